"""The fleet's schedules over its account x day partitions: every day, one run per account for yesterday's spot
orders and order lists, and one for yesterday's USDⓈ-M and PM orders, trades and income from REST; on the 1st of
each month, one run per account for last month's USDⓈ-M and PM order exports.

Exports are monthly because each request spends a download id of the account's monthly quota (a daily export run
would spend three times the quota); spot and the futures tails are REST and spend weight only. Each request carries
the account's tag (one run per account at a time in the queue) and a run key, so a tick evaluated twice starts
nothing twice.
Design: docs/design/fleet.md §Schedules.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from assets.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from assets.fleet.assets import ACCOUNT_TAG, EXPORT_TABLES, partition
from assets.fleet.tails import FLEET_TAILS
from pipeline.accounts import Fleet

SPOT_KEYS = [dg.AssetKey("spot_orders"), dg.AssetKey("spot_order_lists")]
DAILY_CRON = "15 0 * * *"  # 00:15 UTC, as the single-account daily_schedule: yesterday is complete
MONTHLY_CRON = "15 0 1 * *"


def daily_requests(fleet: Fleet, today: date) -> list[dg.RunRequest]:
    """Yesterday's spot partition of every spot account that had started by then."""
    day = today - timedelta(days=1)
    return [
        dg.RunRequest(
            run_key=f"fleet-daily-{a.name}-{day}",
            partition_key=partition(a.name, day),
            asset_selection=SPOT_KEYS,
            tags={ACCOUNT_TAG: a.name},
        )
        for a in fleet.accounts
        if a.has("spot") and day >= a.start_date
    ]


def daily_rest_requests(fleet: Fleet, today: date) -> list[dg.RunRequest]:
    """Yesterday's futures REST tails (orders, trades, income) of every account that trades USDⓈ-M or PM."""
    day = today - timedelta(days=1)
    requests = []
    for a in fleet.accounts:
        keys = [dg.AssetKey(t.name) for t in FLEET_TAILS if a.has(t.market)]
        if keys and day >= a.start_date:
            requests.append(
                dg.RunRequest(
                    run_key=f"fleet-rest-{a.name}-{day}",
                    partition_key=partition(a.name, day),
                    asset_selection=keys,
                    tags={ACCOUNT_TAG: a.name},
                )
            )
    return requests


def monthly_export_requests(fleet: Fleet, today: date) -> list[dg.RunRequest]:
    """Last month's export tables of every account that trades them, from its start date on."""
    end = today.replace(day=1) - timedelta(days=1)
    requests = []
    for a in fleet.accounts:
        keys = [dg.AssetKey(table) for table, market, _ in EXPORT_TABLES if a.has(market)]
        start = max(end.replace(day=1), a.start_date)
        if keys and start <= end:
            tags = {ACCOUNT_TAG: a.name, RANGE_START_TAG: f"{a.name}|{start}", RANGE_END_TAG: f"{a.name}|{end}"}
            requests.append(
                dg.RunRequest(run_key=f"fleet-exports-{a.name}-{end:%Y-%m}", asset_selection=keys, tags=tags)
            )
    return requests


def build_fleet_schedules(fleet: Fleet, job_name: str, rest_job_name: str) -> list[dg.ScheduleDefinition]:
    @dg.schedule(
        cron_schedule=DAILY_CRON,
        job_name=job_name,
        execution_timezone="UTC",
        description="Every day at 00:15 UTC: yesterday's spot orders and order lists, one run per account "
        "(partition <account>|<day>). Spends weight, no download id.",
    )
    def fleet_daily_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
        requests = daily_requests(fleet, context.scheduled_execution_time.date())
        return requests or dg.SkipReason("no spot account had started by yesterday")

    @dg.schedule(
        cron_schedule=DAILY_CRON,
        job_name=rest_job_name,
        execution_timezone="UTC",
        description="Every day at 00:15 UTC: yesterday's USDⓈ-M and PM orders, trades and income from REST, one run "
        "per account that trades them (partition <account>|<day>). Spends weight, no download id.",
    )
    def fleet_rest_daily_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
        requests = daily_rest_requests(fleet, context.scheduled_execution_time.date())
        return requests or dg.SkipReason("no USDⓈ-M or PM account had started by yesterday")

    @dg.schedule(
        cron_schedule=MONTHLY_CRON,
        job_name=job_name,
        execution_timezone="UTC",
        description="On the 1st at 00:15 UTC: last month's USDⓈ-M and PM order exports, one run per account, one "
        "download id per account and market.",
    )
    def fleet_monthly_exports_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
        requests = monthly_export_requests(fleet, context.scheduled_execution_time.date())
        return requests or dg.SkipReason("no account trades USDⓈ-M or PM since last month")

    return [fleet_daily_schedule, fleet_rest_daily_schedule, fleet_monthly_exports_schedule]

"""The futures orders REST source's Definitions, built from Settings: the REST tail assets, their backfill job, the
``daily`` job (spot, USDⓈ-M and PM for yesterday) with its schedule, and the schedule of the exports nothing else
can replace (it replaced the weekly export schedule)."""

from __future__ import annotations

import dagster as dg

from assets.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from assets.common.resources import Common, LakeResource
from assets.exports.assets import CHAINS
from assets.futures.assets import ORDER_ASSETS, build_orders_asset
from assets.spot.jobs import SELECTION as SPOT
from assets.spot.jobs import TRADES as SPOT_TRADES
from assets.trades.definitions import INCOME, TRADES
from pipeline.futures.plan import export_needs, requests_of
from pipeline.settings import Settings

ORDERS = [a.name for a in ORDER_ASSETS]
DAILY = "daily"


def build_daily_schedule(daily: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    # 00:15 UTC: yesterday is complete; a quarter of an hour lets late updates settle.
    return dg.build_schedule_from_partitioned_job(
        daily,
        hour_of_day=0,
        minute_of_hour=15,
        name="daily_schedule",
        description="Every day at 00:15 UTC: yesterday's spot, USDⓈ-M and PM orders (REST), the open orders "
        "refreshed, the trades and income of the day. Spends weight, no download id.",
    )


def build_export_needs_schedule(requests: str, settings: Settings) -> dg.ScheduleDefinition:
    """Exports only where REST cannot reach (:func:`pipeline.futures.plan.plan_daily_exports`)."""
    cron = settings.export_cron

    @dg.schedule(
        cron_schedule=cron,
        job_name=requests,
        execution_timezone="UTC",
        description=f"Cron {cron!r} (UTC; ORDERLAKE_EXPORT_CRON): request exports only for days the daily run "
        "missed for longer than REST keeps them, for the days of orders REST stopped showing before their final "
        "state, and (ORDERLAKE_MONTHLY_RECONCILIATION) last month on the 1st. Usually nothing: no download id.",
    )
    def export_needs_schedule(context: dg.ScheduleEvaluationContext, lake: LakeResource) -> dg.SkipReason | list:
        now = int(context.scheduled_execution_time.timestamp() * 1000)
        ranges = requests_of(export_needs(lake.path, lake.account, now, settings))
        if not ranges:
            return dg.SkipReason("REST covers every day: no export needed")
        return [  # each market only for its own windows
            dg.RunRequest(
                run_key=f"export-needs-{a}-{b}-{'-'.join(markets)}",
                tags={RANGE_START_TAG: a.isoformat(), RANGE_END_TAG: b.isoformat()},
                asset_selection=[dg.AssetKey(c.requests) for c in CHAINS if c.market in markets],
            )
            for (a, b), markets in ranges.items()
        ]

    return export_needs_schedule


def build_definitions(settings: Settings, common: Common | None = None) -> dg.Definitions:
    common = common or Common.from_settings(settings)
    backfill = dg.define_asset_job(
        "futures_orders_rest_backfill",
        selection=ORDERS,
        partitions_def=common.partitions,
        description="USDⓈ-M and PM UM orders of a range of days from REST (the last 90 days; 3 for zero-fill "
        "cancels), the lake's open orders refreshed",
    )
    daily = dg.define_asset_job(
        DAILY,
        selection=[*SPOT, *SPOT_TRADES, *ORDERS, *TRADES, *INCOME],
        partitions_def=common.partitions,
        config={"ops": {"spot_order_history": {"config": {"mode": "daily"}}}},
        description="Yesterday's spot, USDⓈ-M and PM orders (REST), the lake's open orders refreshed, and the day's "
        "trades and income: no download id",
    )
    return dg.Definitions(
        assets=[build_orders_asset(a, common.partitions, settings.futures_symbols) for a in ORDER_ASSETS],
        jobs=[backfill, daily],
        schedules=[
            build_daily_schedule(daily),
            build_export_needs_schedule("export_requests", settings),
        ],
        resources=common.resources,
    )

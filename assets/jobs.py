"""Jobs and schedules: the daily spot refresh and the weekly export request.

Both schedules are STOPPED by default (they spend Binance weight and, for exports, monthly quota): switch them on
in the Dagster UI (Automation) or with ``dagster schedule start``. Times are UTC.
"""

import os
from datetime import date

import dagster as dg

from assets.exports import CHAINS
from assets.partitions import RANGE_END_TAG, RANGE_START_TAG, daily_partitions
from assets.resources import LakeResource
from pipeline.exports.ledger import ExportLedger
from pipeline.exports.planning import DEFAULT_REFRESH_DAYS, refresh_range
from pipeline.exports.states import BLOCKING
from pipeline.times import day_of

spot_daily_job = dg.define_asset_job(
    "spot_daily",
    selection=["spot_symbol_index", "spot_orders", "spot_order_lists", "spot_open_orders"],
    partitions_def=daily_partitions,
    config={"ops": {"spot_order_history": {"config": {"mode": "daily"}}}},
    description="Yesterday's spot orders in plain 24 h windows over the active symbols, plus an open-orders snapshot",
)

spot_backfill_job = dg.define_asset_job(
    "spot_backfill",
    selection=["spot_symbol_index", "spot_orders", "spot_order_lists", "spot_open_orders"],
    partitions_def=daily_partitions,
    description="A range of spot partitions in one run, with the cost-based planner (windows or orderId cursors), "
    "and a fresh open-orders snapshot",
)

export_requests_job = dg.define_asset_job(
    "export_requests",
    selection=[s.requests for s in CHAINS],
    partitions_def=daily_partitions,
    description="Request USDⓈ-M and PM UM order-history exports (download ids) for a range of days. Spends quota.",
)

warehouse_job = dg.define_asset_job(
    "warehouse_build", selection=["warehouse"], description="Rebuild the DuckDB catalog and the daily-activity chart"
)

# 00:15 UTC: yesterday is complete; a quarter of an hour lets late updates settle.
spot_daily_schedule = dg.build_schedule_from_partitioned_job(
    spot_daily_job,
    hour_of_day=0,
    minute_of_hour=15,
    name="spot_daily_schedule",
    description="Every day at 00:15 UTC: yesterday's spot partition (plain 24 h windows, active symbols).",
)

EXPORT_CRON = os.environ.get("ORDERLAKE_EXPORT_CRON", "").strip() or "30 0 * * 1"
EXPORT_WINDOW_DAYS = int(os.environ.get("ORDERLAKE_EXPORT_WINDOW_DAYS", "").strip() or DEFAULT_REFRESH_DAYS)


def last_exported_day(lake: LakeResource) -> date | None:
    """The last day every export chain has covered (None if one of them never exported)."""
    ledger = ExportLedger(lake.path)
    ends = []
    for spec in CHAINS:
        entries = ledger.entries(market=spec.market, kind=spec.kind, account=lake.account, status=BLOCKING)
        if not entries:
            return None
        ends.append(max(day_of(e.end_ms) for e in entries))
    return min(ends)


@dg.schedule(
    cron_schedule=EXPORT_CRON,
    job=export_requests_job,
    execution_timezone="UTC",
    description=f"Cron {EXPORT_CRON!r} (UTC; ORDERLAKE_EXPORT_CRON): request exports for the last "
    f"{EXPORT_WINDOW_DAYS} complete days (ORDERLAKE_EXPORT_WINDOW_DAYS), reaching back to the "
    "last exported day if a run was skipped. Days already exported are skipped, so weekly runs "
    "spend about 4-5 of the ~10 monthly ids per endpoint and leave room for the website.",
)
def export_weekly_schedule(context: dg.ScheduleEvaluationContext, lake: LakeResource) -> dg.RunRequest:
    start, end = refresh_range(
        context.scheduled_execution_time.date(), EXPORT_WINDOW_DAYS, last_covered=last_exported_day(lake)
    )
    return dg.RunRequest(
        run_key=f"exports-{start}-{end}", tags={RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()}
    )

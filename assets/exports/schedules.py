"""The export request job and the weekly schedule (STOPPED by default: it spends monthly quota). Times are UTC."""

from __future__ import annotations

from datetime import date

import dagster as dg

from assets.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from assets.common.resources import LakeResource
from assets.exports.assets import CHAINS
from pipeline.exports.ledger import ExportLedger
from pipeline.exports.planning import refresh_range
from pipeline.exports.states import BLOCKING
from pipeline.times import day_of


def build_export_requests_job(partitions: dg.PartitionsDefinition) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        "export_requests",
        selection=[s.requests for s in CHAINS],
        partitions_def=partitions,
        description="Request USDⓈ-M and PM UM order-history exports (download ids) for a range of days. Spends quota.",
    )


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


def build_export_weekly_schedule(
    requests: dg.UnresolvedAssetJobDefinition, cron: str, window_days: int
) -> dg.ScheduleDefinition:
    """``cron`` (ORDERLAKE_EXPORT_CRON) asks for the last ``window_days`` (ORDERLAKE_EXPORT_WINDOW_DAYS)."""

    @dg.schedule(
        cron_schedule=cron,
        job=requests,
        execution_timezone="UTC",
        description=f"Cron {cron!r} (UTC; ORDERLAKE_EXPORT_CRON): request exports for the last "
        f"{window_days} complete days (ORDERLAKE_EXPORT_WINDOW_DAYS), reaching back to the "
        "last exported day if a run was skipped. Days already exported are skipped, so weekly runs "
        "spend about 4-5 of the ~10 monthly ids per endpoint and leave room for the website.",
    )
    def export_weekly_schedule(context: dg.ScheduleEvaluationContext, lake: LakeResource) -> dg.RunRequest:
        start, end = refresh_range(
            context.scheduled_execution_time.date(), window_days, last_covered=last_exported_day(lake)
        )
        return dg.RunRequest(
            run_key=f"exports-{start}-{end}", tags={RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()}
        )

    return export_weekly_schedule

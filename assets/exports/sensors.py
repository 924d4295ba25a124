"""The export link sensor and the retrieval runs it launches: one run per ready download id (``run_key``)."""

from __future__ import annotations

import dagster as dg

from assets.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from assets.exports.assets import ALL_CHAINS, DOWNLOAD_ID_TAG, ExportAssets
from assets.exports.resources import ExportsResource
from pipeline.exports.chain import ExportChain
from pipeline.exports.ledger import LedgerEntry
from pipeline.exports.states import LedgerState
from pipeline.times import day_of, fmt_ms


def build_retrieval_jobs(partitions: dg.PartitionsDefinition) -> list[dg.UnresolvedAssetJobDefinition]:
    return [
        dg.define_asset_job(
            spec.retrieval_job,
            selection=[spec.links, spec.files, spec.table_asset],
            partitions_def=partitions,
            description=f"Retrieve and partition one {spec.market} export (launched by the export link "
            "sensor, one run per download id)",
        )
        for spec in ALL_CHAINS
    ]


def retrieval_request(spec: ExportAssets, entry: LedgerEntry) -> dg.RunRequest:
    """The run for one ready download id: its own days, idempotent by download id."""
    return dg.RunRequest(
        run_key=str(entry.download_id),
        job_name=spec.retrieval_job,
        tags={
            DOWNLOAD_ID_TAG: str(entry.download_id),
            RANGE_START_TAG: day_of(entry.start_ms).isoformat(),
            RANGE_END_TAG: day_of(entry.end_ms).isoformat(),
        },
    )


def ready_for_retrieval(chain: ExportChain) -> list[tuple[ExportAssets, LedgerEntry]]:
    """Completed or retrieved exports whose partitions are not written yet."""
    by_market = {(s.market, s.kind): s for s in ALL_CHAINS}
    return [
        (by_market[(e.market, e.kind)], e)
        for e in chain.ledger.entries(account=chain.account, status=(LedgerState.COMPLETED, LedgerState.RETRIEVED))
        if (e.market, e.kind) in by_market
    ]


def export_link_sensor(context: dg.SensorEvaluationContext, exports: ExportsResource):
    chain = exports.chain()
    outcomes = chain.poll_due()
    for o in outcomes:
        (context.log.error if o.status == "error" else context.log.info)(o.message)
    requests = [retrieval_request(spec, entry) for spec, entry in ready_for_retrieval(chain)]
    if requests:
        return dg.SensorResult(run_requests=requests)
    nxt = chain.ledger.next_poll_time(account=chain.account)
    open_ids = len(chain.ledger.entries(account=chain.account, status=LedgerState.PROCESSING))
    return dg.SkipReason(
        f"{open_ids} export(s) processing; next poll {fmt_ms(nxt)}" if open_ids else "no export is processing"
    )


def build_export_link_sensor(retrieval_jobs: list[dg.UnresolvedAssetJobDefinition]) -> dg.SensorDefinition:
    return dg.sensor(
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        jobs=retrieval_jobs,
        description="Polls …/asyn/id for the open download ids when they are due (paced by "
        "avgCostTimestampOfLast30d, backing off), and launches the retrieval run of each ready "
        "export. All state is in the export ledger, so it survives restarts and hours of processing.",
    )(export_link_sensor)

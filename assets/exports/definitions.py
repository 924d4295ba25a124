"""The exports source's Definitions, built from Settings."""

from __future__ import annotations

import dagster as dg

from assets.common.resources import Common
from assets.exports.assets import ALL_CHAINS, FILL_CHAINS, build_chain_assets
from assets.exports.resources import ExportsResource
from assets.exports.schedules import build_export_requests_job
from assets.exports.sensors import build_export_link_sensor, build_retrieval_jobs
from assets.trades.exports import build_fill_export_requests_jobs
from pipeline.settings import Settings


def build_definitions(settings: Settings, common: Common | None = None) -> dg.Definitions:
    common = common or Common.from_settings(settings)
    requests = build_export_requests_job(common.partitions)
    by_kind = {k: [s.requests for s in FILL_CHAINS if s.kind == k] for k in ("trade", "income")}
    fill_requests = build_fill_export_requests_jobs(by_kind, common.partitions)
    retrieval = build_retrieval_jobs(common.partitions)
    return dg.Definitions(
        assets=[a for spec in ALL_CHAINS for a in build_chain_assets(spec, common.partitions)],
        jobs=[requests, *fill_requests, *retrieval],
        sensors=[build_export_link_sensor(retrieval)],
        resources={
            **common.resources,
            "exports": ExportsResource.from_settings(settings, common.binance, common.lake),
        },
    )

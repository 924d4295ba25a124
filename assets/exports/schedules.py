"""The export request job. No schedule of its own: exports are requested by ``orderlake backfill``, by hand, and by
the ``export_needs_schedule`` (:mod:`assets.futures.definitions`) only where REST cannot reach."""

from __future__ import annotations

import dagster as dg

from assets.exports.assets import CHAINS


def build_export_requests_job(partitions: dg.PartitionsDefinition) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        "export_requests",
        selection=[s.requests for s in CHAINS],
        partitions_def=partitions,
        description="Request USDⓈ-M and PM UM order-history exports (download ids) for a range of days. Spends quota.",
    )

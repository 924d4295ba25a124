"""The catalog builder of one data dir, with how long an old lake snapshot is kept for its readers."""

from __future__ import annotations

import dagster as dg

from assets.common.resources import LakeResource
from pipeline.settings import Settings
from pipeline.warehouse.catalog import CatalogResult, build_catalog


class CatalogResource(dg.ConfigurableResource):
    lake: LakeResource
    snapshot_grace_seconds: float  # ORDERLAKE_SNAPSHOT_GRACE_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings, lake: LakeResource) -> CatalogResource:
        return cls(lake=lake, snapshot_grace_seconds=settings.snapshot_grace_seconds)

    def build(self) -> CatalogResult:
        return build_catalog(self.lake.path, snapshot_grace_seconds=self.snapshot_grace_seconds)

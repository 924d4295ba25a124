"""The catalog builder of one data dir, with how long an old lake snapshot is kept for its readers."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from assets.common.resources import LakeResource
from pipeline.settings import Settings
from pipeline.times import now_ms
from pipeline.warehouse.catalog import CatalogResult, build_catalog
from pipeline.warehouse.symbols import FUTURES_MARKETS, Refresh, refresh_futures_symbols


class CatalogResource(dg.ConfigurableResource):
    lake: LakeResource
    snapshot_grace_seconds: float  # ORDERLAKE_SNAPSHOT_GRACE_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings, lake: LakeResource) -> CatalogResource:
        return cls(lake=lake, snapshot_grace_seconds=settings.snapshot_grace_seconds)

    def build(self) -> CatalogResult:
        return build_catalog(self.lake.path, snapshot_grace_seconds=self.snapshot_grace_seconds)

    def build_with_assets(self, futures_exchange_info: Callable[[], dict]) -> tuple[CatalogResult, Refresh]:
        """Build; when futures symbols of the lake have no recorded assets, ask exchangeInfo once and rebuild."""
        built = self.build()
        wanted = [symbol for market, symbol in built.unknown_assets if market in FUTURES_MARKETS]
        if not wanted:
            return built, Refresh()
        refresh = refresh_futures_symbols(self.lake.path, wanted, futures_exchange_info, now_ms())
        return (self.build() if refresh.recorded else built), refresh

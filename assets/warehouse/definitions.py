"""The warehouse source's Definitions, built from Settings."""

from __future__ import annotations

import dagster as dg

from assets.common.resources import Common
from assets.warehouse.assets import warehouse, warehouse_automation, warehouse_job
from assets.warehouse.resources import CatalogResource
from pipeline.settings import Settings


def build_definitions(settings: Settings, common: Common | None = None) -> dg.Definitions:
    common = common or Common.from_settings(settings)
    return dg.Definitions(
        assets=[warehouse],
        jobs=[warehouse_job],
        sensors=[warehouse_automation],
        resources={**common.resources, "catalog": CatalogResource.from_settings(settings, common.lake)},
    )

"""The futures orders REST source's Definitions, built from Settings."""

from __future__ import annotations

import dagster as dg

from assets.common.resources import Common
from assets.futures.assets import ORDER_ASSETS, build_orders_asset
from pipeline.settings import Settings

ORDERS = [a.name for a in ORDER_ASSETS]


def build_definitions(settings: Settings, common: Common | None = None) -> dg.Definitions:
    common = common or Common.from_settings(settings)
    backfill = dg.define_asset_job(
        "futures_orders_rest_backfill",
        selection=ORDERS,
        partitions_def=common.partitions,
        description="USDⓈ-M and PM UM orders of a range of days from REST (the last 90 days; 3 for zero-fill "
        "cancels), the lake's open orders refreshed",
    )
    return dg.Definitions(
        assets=[build_orders_asset(a, common.partitions, settings.futures_symbols) for a in ORDER_ASSETS],
        jobs=[backfill],
        resources=common.resources,
    )

"""The spot source's Definitions, built from Settings."""

from __future__ import annotations

import dagster as dg

from assets.common.resources import Common
from assets.spot.assets import build_spot_order_history, spot_open_orders, spot_symbol_index
from assets.spot.jobs import build_spot_jobs
from assets.spot.resources import SpotResource
from assets.spot.trades import build_spot_trades
from pipeline.settings import Settings


def build_definitions(settings: Settings, common: Common | None = None) -> dg.Definitions:
    common = common or Common.from_settings(settings)
    daily, backfill, trades = build_spot_jobs(common.partitions)
    return dg.Definitions(
        assets=[
            spot_symbol_index,
            build_spot_order_history(common.partitions),
            spot_open_orders,
            build_spot_trades(common.partitions),
        ],
        jobs=[daily, backfill, trades],
        resources={**common.resources, "spot": SpotResource.from_settings(settings)},
    )

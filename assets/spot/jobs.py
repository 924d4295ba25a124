"""Spot jobs (the daily schedule runs the ``daily`` job of :mod:`assets.futures.definitions`: spot and futures)."""

from __future__ import annotations

import dagster as dg

SELECTION = ["spot_symbol_index", "spot_orders", "spot_order_lists", "spot_open_orders"]
TRADES = ["spot_trades"]


def build_spot_jobs(partitions: dg.PartitionsDefinition) -> tuple[dg.UnresolvedAssetJobDefinition, ...]:
    """(spot_daily, spot_backfill, spot_trades_backfill)."""
    daily = dg.define_asset_job(
        "spot_daily",
        selection=SELECTION + TRADES,
        partitions_def=partitions,
        config={"ops": {"spot_order_history": {"config": {"mode": "daily"}}}},
        description="Yesterday's spot orders in plain 24 h windows over the active symbols, an open-orders "
        "snapshot, and yesterday's trades planned from the filled orders",
    )
    backfill = dg.define_asset_job(
        "spot_backfill",
        selection=SELECTION,
        partitions_def=partitions,
        description="A range of spot partitions in one run, with the cost-based planner (windows or orderId "
        "cursors), and a fresh open-orders snapshot",
    )
    trades = dg.define_asset_job(
        "spot_trades_backfill",
        selection=TRADES,
        partitions_def=partitions,
        description="A range of spot trade partitions in one run, planned from the lake's filled orders (run the "
        "spot orders of the range first)",
    )
    return daily, backfill, trades

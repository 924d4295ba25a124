"""Spot jobs and the daily schedule (STOPPED by default: it spends Binance weight). Times are UTC."""

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


def build_spot_daily_schedule(daily: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    # 00:15 UTC: yesterday is complete; a quarter of an hour lets late updates settle.
    return dg.build_schedule_from_partitioned_job(
        daily,
        hour_of_day=0,
        minute_of_hour=15,
        name="spot_daily_schedule",
        description="Every day at 00:15 UTC: yesterday's spot partition (plain 24 h windows, active symbols).",
    )

"""Spot order history: symbol discovery, the cost-based request planner and the fetch loop (no Dagster here).

Typical use (the Dagster asset is a thin wrapper around this)::

    index = SymbolIndex.load(data_dir, account)
    found = discover_symbols(client.spot, index, explicit=settings.spot_symbols, lake_symbols=held)
    plan = plan_spot_backfill(index, start, end)            # no calls; plan.summary() -> run metadata
    result = execute_plan(client.spot, plan, index=index, on_day=write_partition,
                          weight_used=lambda: client.weight_used()["spot"])
"""

from pipeline.spot.common import BlindSpot
from pipeline.spot.discovery import DiscoveryResult, discover_symbols
from pipeline.spot.fetch import OpenOrders, SpotFetchResult, execute_plan, fetch_open_orders
from pipeline.spot.index import SymbolActivity, SymbolIndex
from pipeline.spot.planner import SpotPlan, SymbolPlan, active_symbols, plan_spot_backfill

__all__ = [
    "BlindSpot",
    "DiscoveryResult",
    "OpenOrders",
    "SpotFetchResult",
    "SpotPlan",
    "SymbolActivity",
    "SymbolIndex",
    "SymbolPlan",
    "active_symbols",
    "discover_symbols",
    "execute_plan",
    "fetch_open_orders",
    "plan_spot_backfill",
]

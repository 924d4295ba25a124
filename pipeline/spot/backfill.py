"""One spot backfill, end to end and without Dagster: discover -> plan -> fetch -> write daily partitions.

The Dagster assets, ``orderlake backfill`` and the benchmarks all call :func:`backfill_spot`. Rewriting a day merges
with what the lake holds (:func:`pipeline.storage.versions.write_day`): an unchanged row keeps its ``ingested_at`` and
an order the new fetch no longer returns is kept. Design: docs/design/spot-planner.md §Writing: merge, never shrink.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from pipeline import progress
from pipeline.spot.common import BlindSpot, SpotApi
from pipeline.spot.discovery import DiscoveryResult, ProbeMode, discover_symbols
from pipeline.spot.fetch import SpotFetchResult, execute_plan, fetch_open_orders
from pipeline.spot.index import SymbolIndex
from pipeline.spot.planner import ListPlan, Mode, SpotPlan, plan_spot_backfill
from pipeline.storage import lake
from pipeline.storage.schemas import spot_open_orders, spot_order_lists, spot_orders
from pipeline.storage.versions import write_day
from pipeline.times import day_of, now_ms

Transport = Literal["rest", "ws"]
# `source` column values (pipeline.storage.schemas.columns.SOURCES)
ORDER_SOURCE = {"rest": "rest_allOrders", "ws": "ws_allOrders"}
LIST_SOURCE = {"rest": "rest_allOrderList", "ws": "ws_allOrderList"}
OPEN_SOURCE = {"rest": ("rest_openOrders", "rest_openOrderList"), "ws": ("ws_openOrders", "ws_openOrderList")}
INDEX_FRESH_S = 15 * 60.0


@dataclass
class SpotBackfillResult:
    """What one backfill did and cost; :meth:`metadata` is what the Dagster assets record."""

    plan: SpotPlan
    fetch: SpotFetchResult
    discovery: DiscoveryResult | None
    orders_written: dict[date, int] = field(default_factory=dict)
    lists_written: dict[date, int] = field(default_factory=dict)
    weight_spent: int | None = None  # the client's own count for the whole backfill (discovery included)

    @property
    def blind_spots(self) -> list[BlindSpot]:
        spots = list(self.fetch.blind_spots) + list(self.discovery.blind_spots if self.discovery else [])
        seen: dict[tuple[str, str | None, str], BlindSpot] = {}
        for b in spots:
            seen.setdefault((b.kind, b.symbol, b.detail), b)
        return list(seen.values())

    def metadata(self) -> dict[str, Any]:
        plan = self.plan.summary()
        return {
            "plan": {
                k: plan[k]
                for k in (
                    "mode",
                    "start",
                    "end",
                    "days",
                    "est_calls",
                    "est_weight",
                    "strategies",
                    "order_lists",
                    "baselines",
                )
            },
            "discovery": self.discovery.summary() if self.discovery else None,
            "calls": self.fetch.calls,
            "weight_fetch": self.fetch.weight,
            "weight_discovery": self.discovery.cost_weight if self.discovery else 0,
            "weight_spent": self.weight_spent,
            "fallbacks": self.fetch.fallbacks,
            "blind_spots": [b.to_dict() for b in self.blind_spots],
        }


def lake_symbols(data_dir: str | Path, account: str) -> list[str]:
    """Symbols the lake already holds for ``account`` (evidence for discovery; reads only one column)."""
    data = lake.account_dataset(data_dir, "spot_orders", account)
    if data is None:
        return []
    table = data.to_table(columns=["symbol"])
    return sorted(set(table.column("symbol").unique().to_pylist()))


def backfill_spot(
    spot_api: SpotApi,
    *,
    data_dir: str | Path,
    account: str,
    start: date,
    end: date,
    transport: Transport = "rest",
    mode: Mode = "backfill",
    explicit: Iterable[str] = (),
    probe: ProbeMode = "auto",
    orders: bool = True,
    order_lists: bool = True,
    weight_used: Callable[[], int] | None = None,
    fresh_for_s: float = INDEX_FRESH_S,
    on_written: Callable[[str, date, pa.Table], None] | None = None,
    log: Callable[[str], None] = print,
) -> SpotBackfillResult:
    """Fetch the spot orders / order lists whose last update falls on ``start``..``end`` and write one partition
    per day (empty days too, so coverage is known). A day is written as soon as it is complete for every symbol,
    so a crash leaves the finished days intact and a rerun completes the rest.

    mode="daily" skips the probe and plans plain 24 h windows over the active symbols (the scheduled run).
    ``orders`` / ``order_lists`` select the tables (an asset run may select only one of them).
    ``on_written(table, day, rows)`` sees every partition as stored (the asset checks run on it).
    Discovery is skipped when the symbol index was refreshed less than ``fresh_for_s`` ago (the index asset ran
    just before in the same job): asking exchangeInfo and the account again would only spend weight.
    """
    before = weight_used() if weight_used else None
    index = SymbolIndex.load(data_dir, account)
    discovery = None
    if not _fresh(index, fresh_for_s):
        discovery = discover_symbols(
            spot_api,
            index,
            explicit=explicit,
            lake_symbols=lake_symbols(data_dir, account),
            probe=False if mode == "daily" else probe,
            log=log,
        )
    plan = plan_spot_backfill(index, start, end, mode=mode, log=log)
    plan = _select(plan, orders=orders, order_lists=order_lists)
    ingested_at = datetime.now(UTC)
    orders_written: dict[date, int] = {}
    lists_written: dict[date, int] = {}

    def on_day(day: date, order_rows: list[dict], list_rows: list[dict]) -> None:
        progress.report(
            "spot partitions",
            len(orders_written or lists_written) + 1,
            len(plan.days),
            weight=weight_used() - before if weight_used and before is not None else 0,
            note=day.isoformat(),
        )
        if orders:
            table = spot_orders.from_api(
                order_rows, account=account, source=ORDER_SOURCE[transport], ingested_at=ingested_at
            )
            orders_written[day] = _store(data_dir, "spot_orders", account, day, table, on_written)
        if order_lists:
            table = spot_order_lists.from_api(
                list_rows, account=account, source=LIST_SOURCE[transport], ingested_at=ingested_at
            )
            lists_written[day] = _store(data_dir, "spot_order_lists", account, day, table, on_written)

    fetched = execute_plan(spot_api, plan, index=index, on_day=on_day, log=log)
    spent = weight_used() - before if weight_used and before is not None else None
    result = SpotBackfillResult(plan, fetched, discovery, orders_written, lists_written, spent)
    index.blind_spots = [b.to_dict() for b in result.blind_spots]
    index.save()
    return result


def _store(
    data_dir: str | Path,
    table: str,
    account: str,
    day: date,
    rows: pa.Table,
    on_written: Callable[[str, date, pa.Table], None] | None,
) -> int:
    stored = write_day(data_dir, table, account, day, rows)
    if on_written is not None:
        on_written(table, day, stored)
    return stored.num_rows


def _fresh(index: SymbolIndex, fresh_for_s: float) -> bool:
    """The index knows the listed symbols and has seen exchangeInfo within ``fresh_for_s``."""
    at = index.exchange_info_at
    return bool(index.symbols) and at is not None and now_ms() - at < fresh_for_s * 1000


def _select(plan: SpotPlan, *, orders: bool, order_lists: bool) -> SpotPlan:
    """Drop the half of the plan a run did not select (allOrderList has no symbol: it is planned separately)."""
    if not (orders or order_lists):
        raise ValueError("select at least one of orders / order_lists")
    if not orders:
        plan = replace(plan, symbols=[])
    if not order_lists:
        plan = replace(plan, order_lists=ListPlan("skip", [], None, 0, None, "spot_order_lists not selected"))
    return plan


@dataclass(frozen=True)
class OpenOrdersSnapshot:
    day: date
    orders: int
    order_lists: list[dict]  # open OCO/OTO lists as Binance sent them; their member orders are in ``orders``
    weight: int
    path: Path


def snapshot_open_orders(
    spot_api: SpotApi,
    *,
    data_dir: str | Path,
    account: str,
    transport: Transport = "rest",
    log: Callable[[str], None] = print,
) -> OpenOrdersSnapshot:
    """Today's open orders into ``spot_open_orders`` (members of open order lists carry their ``order_list_id``).

    The table's spec says ``snapshot``: the partition of the snapshot's UTC day is replaced by the newest snapshot;
    an empty one means "no open orders at that moment", which is an answer too.
    """
    index = SymbolIndex.load(data_dir, account)
    snap = fetch_open_orders(spot_api, index, log=log)
    taken = now_ms()
    src_orders, _ = OPEN_SOURCE[transport]
    table = spot_open_orders.from_api(
        snap.orders, account=account, snapshot_time=taken, source=src_orders, ingested_at=taken
    )
    day = day_of(taken)
    stored = write_day(data_dir, spot_open_orders.SPEC, account, day, table)
    open_symbols = {row["symbol"] for row in snap.orders}
    for sym, act in index.symbols.items():
        act.has_open = sym in open_symbols
    for sym in open_symbols:
        index.get(sym).has_open = True
    index.order_lists.has_open = bool(snap.order_lists)
    index.save()
    path = lake.partition_path(data_dir, spot_open_orders.SPEC.name, account, day)
    return OpenOrdersSnapshot(day, stored.num_rows, snap.order_lists, snap.weight, path)

"""The fetch loop: executes a :class:`SpotPlan` and returns orders grouped by UTC day of ``updateTime``.

Order lists and cursor symbols come first, then windows day by day, ascending: ``on_day(day, orders, order_lists)``
is called as soon as a day is complete for every symbol, so a crash leaves each day already handed over intact. A
full window is paged, and falls back to the orderId cursor when it cannot advance: nothing is truncated silently.
Design: docs/design/spot-planner.md §Fetching without silent truncation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from pipeline import progress
from pipeline.binance.facts import PAGE_LIMIT, SPOT_WEIGHTS
from pipeline.spot.common import (
    BAD_SYMBOL,
    BlindSpot,
    MeteredSpot,
    SpotApi,
    error_code,
    weight_delta,
)
from pipeline.spot.discovery import candidate_symbols, start_id
from pipeline.spot.index import SymbolIndex
from pipeline.spot.planner import SpotPlan, SymbolPlan
from pipeline.times import day_of, day_window

__all__ = ["OpenOrders", "SpotFetchResult", "execute_plan", "fetch_open_orders"]

logger = logging.getLogger(__name__)

DayCallback = Callable[[date, list[dict], list[dict]], None]


class _NeedCursor(Exception):
    """Window paging cannot proceed safely; fetch this symbol by orderId cursor instead."""


@dataclass
class SpotFetchResult:
    """Rows by partition day (every planned day present, possibly empty), plus what it cost."""

    orders_by_day: dict[date, list[dict]]
    order_lists_by_day: dict[date, list[dict]]
    blind_spots: list[BlindSpot]
    calls: dict[str, int]
    weight: int
    measured_weight: int | None = None
    strategies: dict[str, str] = field(default_factory=dict)  # symbol -> what was actually used
    fallbacks: list[str] = field(default_factory=list)

    @property
    def order_count(self) -> int:
        return sum(len(v) for v in self.orders_by_day.values())

    def summary(self) -> dict[str, Any]:
        return {
            "orders": self.order_count,
            "order_lists": sum(len(v) for v in self.order_lists_by_day.values()),
            "days": len(self.orders_by_day),
            "calls": self.calls,
            "weight": self.weight,
            "measured_weight": self.measured_weight,
            "fallbacks": self.fallbacks,
            "blind_spots": [b.to_dict() for b in self.blind_spots],
        }


def execute_plan(
    spot_api: SpotApi,
    plan: SpotPlan,
    *,
    index: SymbolIndex | None = None,
    on_day: DayCallback | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    weight_used: Callable[[], int] | None = None,
    save_index: bool = True,
    log: Callable[[str], None] | None = None,
) -> SpotFetchResult:
    """Run ``plan`` against ``spot_api`` (client.spot or client.spot_ws).

    index: when given, it learns first/last/count from what was seen (so the next plan is better) and is saved
    at the end if ``save_index``. weight_used: e.g. ``lambda: client.weight_used()["spot"]`` to record the
    client's measured weight next to our own metering.
    """
    run = _Run(MeteredSpot(spot_api), plan, index, on_progress, log or logger.info)
    before = weight_used() if weight_used else None
    run.scanned_at = run.api.server_time()
    if plan.order_lists.strategy == "cursor":
        run.list_cursor()
    for sp in plan.symbols:
        if sp.strategy == "cursor":
            run.cursor(sp, first_day=plan.start)
    for day in plan.days:
        for sp in plan.symbols:
            if sp.strategy == "windows" and day in sp.days and sp.symbol not in run.done:
                run.windows_day(sp, day)
        if plan.order_lists.strategy == "windows" and day in plan.order_lists.days and not run.lists_done:
            run.list_window(day)
        if on_day:
            on_day(day, run.orders_day(day), run.lists_day(day))
    if index is not None and save_index and index.path is not None:
        index.save()
    result = SpotFetchResult(
        orders_by_day={d: run.orders_day(d) for d in plan.days},
        order_lists_by_day={d: run.lists_day(d) for d in plan.days},
        blind_spots=list(plan.blind_spots) + run.blind,
        calls=dict(run.api.meter.calls),
        weight=run.api.meter.weight,
        measured_weight=weight_delta(weight_used, before),
        strategies=run.used,
        fallbacks=run.fallbacks,
    )
    run.log(
        f"spot fetch: {result.order_count} orders over {len(plan.days)} days, "
        f"{run.api.meter.total_calls} calls, weight {result.weight} (planned {plan.est_weight})"
        + (f", client measured {result.measured_weight}" if result.measured_weight is not None else "")
    )
    return result


class _Run:
    """State of one execute_plan call."""

    def __init__(
        self,
        api: MeteredSpot,
        plan: SpotPlan,
        index: SymbolIndex | None,
        on_progress: Callable[[dict[str, Any]], None] | None,
        log: Callable[[str], None],
    ) -> None:
        self.api, self.plan, self.index, self.on_progress, self.log = api, plan, index, on_progress, log
        self.orders: dict[date, dict[tuple[str, int], dict]] = {d: {} for d in plan.days}
        self.lists: dict[date, dict[int, dict]] = {d: {} for d in plan.days}
        self.done: set[str] = set()  # symbols fully covered by a cursor
        self.lists_done = False  # order lists fully covered by a fallback cursor
        self.used: dict[str, str] = {}
        self.fallbacks: list[str] = []
        self.blind: list[BlindSpot] = []
        self.scanned_at = 0

    # -- bookkeeping -------------------------------------------------------------------------------------------
    def add_order(self, row: dict, *, min_day: date | None = None) -> None:
        ut = row["updateTime"]
        if not (self.plan.start_ms <= ut <= self.plan.end_ms):
            return
        day = day_of(ut)
        if min_day is not None and day < min_day:
            return
        bucket = self.orders[day]
        key = (row["symbol"], row["orderId"])
        # one snapshot has one version per order, but overlapping pages can repeat it: keep the newest
        if key not in bucket or bucket[key]["updateTime"] <= ut:
            bucket[key] = row

    def add_list(self, row: dict) -> None:
        tt = row["transactionTime"]
        if self.plan.start_ms <= tt <= self.plan.end_ms:
            bucket = self.lists[day_of(tt)]
            key = row["orderListId"]
            if key not in bucket or bucket[key]["transactionTime"] <= tt:
                bucket[key] = row

    def orders_day(self, day: date) -> list[dict]:
        return sorted(self.orders[day].values(), key=lambda r: (r["symbol"], r["orderId"]))

    def lists_day(self, day: date) -> list[dict]:
        return sorted(self.lists[day].values(), key=lambda r: r["orderListId"])

    def tick(self, note: str) -> None:
        done, total = self.api.meter.total_calls, max(self.plan.est_calls + 1, self.api.meter.total_calls)
        progress.report("spot orders", done, total, weight=self.api.meter.weight, note=note)
        if self.on_progress:
            self.on_progress({"calls": done, "est_calls": total, "weight": self.api.meter.weight, "note": note})

    def bad_symbol(self, symbol: str, exc: Exception) -> None:
        self.used[symbol] = "bad_symbol"
        self.done.add(symbol)
        self.blind.append(
            BlindSpot("delisted", f"{symbol}: -1121 during fetch ({type(exc).__name__}); skipped", symbol=symbol)
        )
        if self.index is not None:
            act = self.index.get(symbol)
            act.blind_spot = "bad_symbol: -1121 during fetch; history unreachable through allOrders"

    # -- orders ------------------------------------------------------------------------------------------------
    def cursor(self, sp: SymbolPlan, *, first_day: date) -> None:
        """orderId cursor: pages of 1000 ascending from the plan's start id, filtered to the range."""
        cur = sp.cursor_start if sp.cursor_start is not None else start_id()
        rows_all: list[dict] = []
        complete = False
        try:
            while True:
                page = self.api.all_orders(sp.symbol, order_id=cur, limit=PAGE_LIMIT)
                self.tick(f"{sp.symbol} cursor")
                rows_all += page
                for r in page:
                    self.add_order(r, min_day=first_day)
                if len(page) < PAGE_LIMIT:
                    complete = True
                    break
                # orderIds are assigned at placement: once a page reaches an order placed after the range end,
                # every later id was placed after it too and cannot have updateTime <= end
                if page[-1]["time"] > self.plan.end_ms:
                    break
                cur = page[-1]["orderId"] + 1
        except Exception as exc:
            if error_code(exc) != BAD_SYMBOL:
                raise
            self.bad_symbol(sp.symbol, exc)
            return
        self.done.add(sp.symbol)
        self.used.setdefault(sp.symbol, "cursor")
        if self.index is not None:
            self.index.get(sp.symbol).add_evidence("fetch")
            self.index.record_scan(
                sp.symbol,
                rows_all,
                complete=complete,
                from_start=sp.cursor_from_start,
                scanned_at=self.scanned_at,
                start_id=sp.cursor_start,
                prior_count=sp.cursor_prior_count,
            )

    def windows_day(self, sp: SymbolPlan, day: date) -> None:
        self.used.setdefault(sp.symbol, "windows")
        try:
            rows = self.window_pages(sp.symbol, day)
        except _NeedCursor as why:
            self.fallbacks.append(f"{sp.symbol} {day}: {why}; switched to orderId cursor")
            self.log(f"spot fetch: {self.fallbacks[-1]}")
            self.used[sp.symbol] = "windows+cursor"
            self.cursor(sp, first_day=day)  # days before `day` were already complete through windows
            return
        except Exception as exc:
            if error_code(exc) != BAD_SYMBOL:
                raise
            self.bad_symbol(sp.symbol, exc)
            return
        for r in rows:
            self.add_order(r)
        if self.index is not None:
            self.index.record_window_rows(sp.symbol, rows)

    def window_pages(self, symbol: str, day: date) -> list[dict]:
        start, end = day_window(day)
        seen: dict[int, dict] = {}
        page_start = start
        while True:
            page = self.api.all_orders(symbol, start_time=page_start, end_time=end, limit=PAGE_LIMIT)
            self.tick(f"{symbol} {day}")
            new = [r for r in page if r["orderId"] not in seen]
            for r in page:
                seen[r["orderId"]] = r
            if len(page) < PAGE_LIMIT:
                return list(seen.values())
            times = [r["updateTime"] for r in page]
            if times != sorted(times):
                raise _NeedCursor("full window page not ordered by updateTime, cannot page by time")
            if times[0] == times[-1] or not new:
                raise _NeedCursor(f"{PAGE_LIMIT} orders share updateTime {times[-1]}, time paging cannot advance")
            # rows with updateTime < the last one are all in; those equal to it may continue on the next page
            page_start = times[-1]

    # -- order lists -------------------------------------------------------------------------------------------
    def list_cursor(self) -> None:
        lp = self.plan.order_lists
        cur = lp.cursor_start if lp.cursor_start is not None else start_id()
        from_start = cur <= max(start_id(), 1) or (self.index is not None and cur == self.index.order_lists.first_id)
        rows_all: list[dict] = []
        while True:
            # fromId cannot be combined with startTime/endTime (-1128): pure id cursor, filter locally
            page = self.api.all_order_lists(from_id=cur, limit=PAGE_LIMIT)
            self.tick("order lists cursor")
            rows_all += page
            for r in page:
                self.add_list(r)
            if len(page) < PAGE_LIMIT:
                break
            cur = page[-1]["orderListId"] + 1
        if self.index is not None:
            self.index.record_list_scan(rows_all, complete=True, from_start=from_start, scanned_at=self.scanned_at)

    def list_window(self, day: date) -> None:
        start, end = day_window(day)
        seen: dict[int, dict] = {}
        page_start = start
        while True:
            page = self.api.all_order_lists(start_time=page_start, end_time=end, limit=PAGE_LIMIT)
            self.tick(f"order lists {day}")
            new = [r for r in page if r["orderListId"] not in seen]
            for r in page:
                seen[r["orderListId"]] = r
            if len(page) < PAGE_LIMIT:
                break
            times = [r["transactionTime"] for r in page]
            if times != sorted(times) or times[0] == times[-1] or not new:
                self.fallbacks.append(f"order lists {day}: time paging cannot advance; switched to fromId cursor")
                self.lists_fallback(day)
                return
            page_start = times[-1]
        for r in seen.values():
            self.add_list(r)

    def lists_fallback(self, day: date) -> None:
        """Cursor over all lists, keeping days from ``day`` on (earlier days were complete through windows)."""
        cur = start_id()
        while True:
            page = self.api.all_order_lists(from_id=cur, limit=PAGE_LIMIT)
            self.tick("order lists cursor")
            for r in page:
                if day_of(r["transactionTime"]) >= day:
                    self.add_list(r)
            if len(page) < PAGE_LIMIT:
                break
            cur = page[-1]["orderListId"] + 1
        self.lists_done = True


class OpenOrders(NamedTuple):
    orders: list[dict]
    order_lists: list[dict]
    calls: int
    weight: int


def fetch_open_orders(
    spot_api: SpotApi, index: SymbolIndex, *, symbols: list[str] | None = None, log: Callable[[str], None] | None = None
) -> OpenOrders:
    """Snapshot of open orders and open order lists, by the cheaper of one account-wide call or one per symbol.

    ``openOrders`` without a symbol costs 80 and sees every symbol; with a symbol it costs 6. Per symbol is used
    only when it is cheaper, over every candidate symbol of the index (delisted pairs cannot hold open orders).
    """
    api = MeteredSpot(spot_api)
    pool = (
        symbols if symbols is not None else [s for s in candidate_symbols(index) if index.get(s).status != "delisted"]
    )
    per_symbol = len(pool) * SPOT_WEIGHTS["open_orders_symbol"]
    orders: list[dict] = []
    if per_symbol < SPOT_WEIGHTS["open_orders_all"]:
        mode = f"per symbol ({len(pool)} x 6 = {per_symbol} < 80)"
        for sym in pool:
            try:
                orders += api.open_orders(sym)
            except Exception as exc:
                if error_code(exc) != BAD_SYMBOL:
                    raise
    else:
        mode = f"account-wide (80 <= {len(pool)} x 6 = {per_symbol})"
        orders = api.open_orders()
    lists = api.open_order_lists()
    (log or logger.info)(
        f"spot open orders: {len(orders)} orders, {len(lists)} lists, {mode}, weight {api.meter.weight}"
    )
    return OpenOrders(orders, lists, api.meter.total_calls, api.meter.weight)

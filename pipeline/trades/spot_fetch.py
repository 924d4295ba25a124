"""Executes a :class:`~pipeline.trades.spot_planner.TradesPlan` with ``myTrades`` and never truncates at 1000.

A full page is always followed: an ``orderId`` page by ``orderId`` + ``fromId``, a window or a cursor page by
``fromId`` from the last id seen, until a page is short or reaches past the range. Trade ids grow with time within a
symbol (docs/design/trades.md §Trade ids), which is what lets a ``fromId`` scan stop at the first trade after the range.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline import progress
from pipeline.binance.facts import PAGE_LIMIT, SPOT_WEIGHTS
from pipeline.spot.common import BAD_SYMBOL, BlindSpot, error_code
from pipeline.times import day_window
from pipeline.trades.spot_planner import SymbolTradesPlan, TradesPlan


class TradesApi(Protocol):
    def my_trades(self, symbol: str, **kw: Any) -> list[dict]: ...


@dataclass
class TradesMeter:
    calls: dict[str, int] = field(default_factory=dict)
    weight: int = 0

    def add(self, kind: str) -> None:
        self.calls[kind] = self.calls.get(kind, 0) + 1
        self.weight += SPOT_WEIGHTS[kind]


@dataclass
class FetchedTrades:
    """Trades by (symbol, id); what it cost; what could not be reached."""

    trades: dict[tuple[str, int], dict] = field(default_factory=dict)
    meter: TradesMeter = field(default_factory=TradesMeter)
    used: dict[str, str] = field(default_factory=dict)
    blind_spots: list[BlindSpot] = field(default_factory=list)

    def add(self, rows: list[dict]) -> None:
        for r in rows:
            self.trades[(r["symbol"], r["id"])] = r


class SpotTradesFetcher:
    """Metered ``myTrades`` calls for one run (``api``: ``client.spot`` or ``client.spot_ws``)."""

    def __init__(self, api: TradesApi, result: FetchedTrades | None = None, on_call: Callable[[], None] | None = None):
        self.api, self.result, self.on_call = api, result or FetchedTrades(), on_call

    def _call(self, symbol: str, **kw: Any) -> list[dict]:
        self.result.meter.add("my_trades_order" if kw.get("order_id") is not None else "my_trades")
        if self.on_call is not None:
            self.on_call()
        return self.api.my_trades(symbol, limit=PAGE_LIMIT, **kw)

    # -- the three strategies ------------------------------------------------------------------------------------
    def of_order(self, symbol: str, order_id: int) -> list[dict]:
        """Every trade of one order (``orderId``, then ``orderId`` + ``fromId`` while pages are full)."""
        rows = self._call(symbol, order_id=order_id)
        out = list(rows)
        while len(rows) == PAGE_LIMIT:
            rows = self._call(symbol, order_id=order_id, from_id=max(r["id"] for r in rows) + 1)
            out += rows
        return out

    def window(self, symbol: str, lo: int, hi: int) -> list[dict]:
        """Every trade with time in ``[lo, hi]`` (at most 24 h): a full window goes on by ``fromId``."""
        rows = self._call(symbol, start_time=lo, end_time=hi)
        if len(rows) < PAGE_LIMIT:
            return rows
        more = self.cursor(symbol, max(r["id"] for r in rows) + 1, hi)
        return rows + [r for r in more if r["time"] <= hi]

    def cursor(self, symbol: str, from_id: int, hi: int) -> list[dict]:
        """Trades with id >= ``from_id`` up to the first page reaching past ``hi`` (or a short page)."""
        out: list[dict] = []
        while True:
            rows = self._call(symbol, from_id=from_id)
            out += rows
            if len(rows) < PAGE_LIMIT or max(r["time"] for r in rows) > hi:
                return out
            from_id = max(r["id"] for r in rows) + 1

    # -- one symbol ------------------------------------------------------------------------------------------------
    def run_symbol(self, plan: SymbolTradesPlan, lo: int, hi: int) -> None:
        try:
            if plan.strategy == "orders":
                for order in plan.orders:
                    self.result.add(self.of_order(plan.symbol, order.order_id))
            elif plan.strategy == "windows":
                for day in plan.days:
                    a, b = day_window(day)
                    self.result.add(self.window(plan.symbol, max(a, lo), min(b, hi)))
            else:
                self.result.add(self._cursor_plan(plan, lo, hi))
        except Exception as exc:
            if error_code(exc) != BAD_SYMBOL:
                raise
            self.result.used[plan.symbol] = "bad_symbol"
            self.result.blind_spots.append(
                BlindSpot(
                    "delisted",
                    f"{plan.symbol}: -1121 from myTrades; the trades of its {len(plan.orders)} filled order(s) "
                    "are out of reach",
                    symbol=plan.symbol,
                )
            )
            return
        self.result.used[plan.symbol] = plan.strategy

    def _cursor_plan(self, plan: SymbolTradesPlan, lo: int, hi: int) -> list[dict]:
        if plan.cursor_from is not None:
            return self.cursor(plan.symbol, plan.cursor_from, hi)
        out: list[dict] = []
        for day in plan.days:  # windows until one holds a trade; the cursor starts after it
            a, b = day_window(day)
            rows = self.window(plan.symbol, max(a, lo), min(b, hi))
            out += rows
            if rows:
                return out + self.cursor(plan.symbol, max(r["id"] for r in rows) + 1, hi)
        return out


def execute_trades_plan(
    api: TradesApi, plan: TradesPlan, *, now_ms: int, log: Callable[[str], None] = print
) -> FetchedTrades:
    lo, hi = day_window(plan.start)[0], min(day_window(plan.end)[1], now_ms)
    result = FetchedTrades()
    total = max(1, round(plan.est_weight))

    def tick() -> None:
        progress.report("spot trades", result.meter.weight, max(total, result.meter.weight), weight=result.meter.weight)

    fetcher = SpotTradesFetcher(api, result, on_call=tick)
    for sp in plan.symbols:
        fetcher.run_symbol(sp, lo, hi)
    log(
        f"spot trades fetch: {len(result.trades)} trades, {sum(result.meter.calls.values())} calls, "
        f"weight {result.meter.weight} (planned {plan.est_weight})"
    )
    return result

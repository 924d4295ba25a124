"""USDⓈ-M and PM UM orders created in a span, from ``allOrders``, correct under each reading of the endpoint.

What a window filters (creation ``time`` or ``updateTime``), whether ``orderId`` combines with a window, and whether
a window may span 7 days exactly are UNCONFIRMED (docs/binance-facts.md §USDⓈ-M allOrders). So windows span at most
7 days minus 1 ms, and reach up to *now* until a page proves the filter is the creation time (a row updated after
the window); a full page (1000) goes on by ``orderId`` alone, which every reading serves alike: ids grow with creation
time within a symbol. A symbol-less call (USDⓈ-M, where served) halves a full window instead.
Design: docs/design/futures-rest.md §Orders REST tail.
"""

from __future__ import annotations

from typing import Any, Protocol

from pipeline import progress
from pipeline.binance.facts import FUTURES_ALL_ORDERS_WEIGHT, FUTURES_ORDER_WEIGHT, FUTURES_SAFE_WINDOW_MS, PAGE_LIMIT
from pipeline.errors import DataError
from pipeline.trades.futures_tail import TailCost as Cost  # calls and weight a run reports

Key = tuple[str, int]


class FuturesOrdersApi(Protocol):
    """What :class:`pipeline.binance.futures.UsdmRest` and ``PapiRest`` offer for orders."""

    def all_orders(self, symbol: str | None = None, **kw: Any) -> list[dict]: ...
    def order(self, symbol: str, order_id: int) -> dict: ...


class OrdersFetcher:
    """One market's ``allOrders`` and ``order`` calls, metered; learns which field a window filters."""

    def __init__(self, api: FuturesOrdersApi, market: str, now_ms: int, cost: Cost | None = None) -> None:
        self.api, self.market, self.now_ms = api, market, now_ms
        self.cost = cost or Cost()
        self.window_field: str | None = None  # "time" or "updateTime" once a page proves it

    def call(self, symbol: str | None, **kw: Any) -> list[dict]:
        self.cost.add("all_orders", FUTURES_ALL_ORDERS_WEIGHT)
        progress.report(f"{self.market} orders", self.cost.weight, self.cost.weight + 1, weight=self.cost.weight)
        return self.api.all_orders(symbol, limit=PAGE_LIMIT, **kw)

    def one(self, symbol: str, order_id: int) -> dict:
        self.cost.add("order", FUTURES_ORDER_WEIGHT)
        return self.api.order(symbol, order_id)

    def _learn(self, rows: list[dict], a: int, b: int) -> None:
        if self.window_field is not None:
            return
        if any(int(r["time"]) < a for r in rows):
            self.window_field = "updateTime"
        elif any(int(r["updateTime"]) > b for r in rows):
            self.window_field = "time"

    def created(self, symbol: str | None, lo: int, hi: int, *, cursor: int = 0) -> dict[Key, dict]:
        """Every order of ``symbol`` (of every symbol when None) created in ``[lo, hi]`` that REST still shows, in its
        current state; may hold later orders too. ``cursor``: an order id created before ``lo`` (0: none known),
        where an ``orderId`` walk can safely start while the window's filter is unknown."""
        out: dict[Key, dict] = {}
        a = lo
        while a <= self._reach(hi):
            b = min(a + FUTURES_SAFE_WINDOW_MS, self._reach(hi))
            rows = self.call(symbol, start_time=a, end_time=b)
            self._learn(rows, a, b)
            if len(rows) >= PAGE_LIMIT:
                if symbol is None:
                    rows = self._halves(a, b)
                elif self.window_field == "time":
                    rows += self.walk(symbol, max(int(r["orderId"]) for r in rows) + 1, b)
                else:  # the page is ordered by a field we cannot prove: walk from before the span, to its end
                    rows += self.walk(symbol, cursor + 1, hi)
                    out.update(_keyed(rows))
                    return out
            out.update(_keyed(rows))
            a = b + 1
        return out

    def _reach(self, hi: int) -> int:
        """How far windows must reach: ``hi`` if they filter by creation, else now (an order created by ``hi`` may
        have been updated since)."""
        return hi if self.window_field == "time" else max(hi, self.now_ms)

    def walk(self, symbol: str, first_id: int, until_ms: int) -> list[dict]:
        """Orders of ``symbol`` from id ``first_id`` on (``orderId`` alone), up to the first created after
        ``until_ms``."""
        out: list[dict] = []
        nxt = first_id
        while True:
            rows = self.call(symbol, order_id=nxt)
            out += rows
            if len(rows) < PAGE_LIMIT or any(int(r["time"]) > until_ms for r in rows):
                return out
            nxt = max(int(r["orderId"]) for r in rows) + 1

    def _halves(self, a: int, b: int) -> list[dict]:
        """A symbol-less window held a full page: halve it until each part is complete."""
        if a >= b:
            raise DataError(
                f"{self.market} allOrders: {PAGE_LIMIT} orders or more in one millisecond ({a}) without a symbol; "
                "set ORDERLAKE_FUTURES_SYMBOLS so orderlake asks per symbol"
            )
        mid = (a + b) // 2
        out: list[dict] = []
        for x, y in ((a, mid), (mid + 1, b)):
            rows = self.call(None, start_time=x, end_time=y)
            out += self._halves(x, y) if len(rows) >= PAGE_LIMIT else rows
        return out


def _keyed(rows: list[dict]) -> dict[Key, dict]:
    return {(str(r["symbol"]), int(r["orderId"])): r for r in rows}

"""The REST tail of USDⓈ-M and PM trades (``userTrades``) and income (``income``), end to end and without Dagster.

Trades: only filled orders have fills, between their creation and their last update, so the lake's futures orders
(the orders REST tail keeps them complete for REST's 90 days) say which symbols and days to ask. Per symbol the
cheaper of 7-day windows over the days that can hold a fill and one ``orderId`` call per filled order (weight 5
either way); a full page goes on by ``fromId``. Income needs no symbol: 7-day windows over the requested days, paged by
``page``. Days REST no longer reaches (trades 90 days back, income 90) are reported, for the exports to fill.
Rows are written to the partition of their UTC day through the merge that keeps what is stored; every requested day
REST reaches whole gets a partition (a day it reaches only in part would be a partition with rows missing).
Design: docs/design/trades.md §Futures REST tails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from pipeline import progress
from pipeline.binance.facts import (
    FUTURES_INCOME_WEIGHT,
    FUTURES_SAFE_WINDOW_MS,
    FUTURES_TRADE_RETENTION_DAYS,
    FUTURES_USER_TRADES_WEIGHT,
    PAGE_LIMIT,
)
from pipeline.futures.reconcile import INCOME, TRADES, Reconciliation, reconcile
from pipeline.storage import lake
from pipeline.storage.schemas import futures_income, futures_orders, futures_trades
from pipeline.storage.schemas.columns import REST
from pipeline.storage.versions import write_day
from pipeline.times import DAY_MS, day_end_ms, day_of, day_start_ms, days_between
from pipeline.trades.spot_backfill import Mismatch, mismatches
from pipeline.trades.stored import FilledOrder, filled_orders, stored_trades

INCOME_RETENTION_DAYS = 90  # "only the last three months" (docs/binance-facts.md §Futures income)
REACH_MARGIN_MS = 60_000  # ask a minute inside the retention, never at its edge
BAD_SYMBOL = -1121


class FuturesTradesApi(Protocol):
    """What :class:`pipeline.binance.futures.UsdmRest` and ``PapiRest`` offer for trades and income."""

    def user_trades(self, symbol: str, **kw: Any) -> list[dict]: ...
    def income(self, *, start_time: int, end_time: int, **kw: Any) -> list[dict]: ...


@dataclass
class TailCost:
    calls: dict[str, int] = field(default_factory=dict)
    weight: int = 0

    def add(self, kind: str, weight: int) -> None:
        self.calls[kind] = self.calls.get(kind, 0) + 1
        self.weight += weight


@dataclass
class FuturesTailResult:
    """What one trades or income run did; :meth:`metadata` is what its asset records."""

    table: str
    reconciliation: Reconciliation
    written: dict[date, int] = field(default_factory=dict)
    unreachable: list[date] = field(default_factory=list)  # requested days REST no longer serves completely
    cost: TailCost = field(default_factory=TailCost)
    strategies: dict[str, str] = field(default_factory=dict)
    repaired: list[tuple[str, int]] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    bad_symbols: list[str] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "partitions_written": len(self.written),
            "rows_written": sum(self.written.values()),
            "rest_unreachable_days": [d.isoformat() for d in self.unreachable][:50],
            "calls": dict(self.cost.calls),
            "weight": self.cost.weight,
            "strategies": self.strategies,
            "repaired_orders": len(self.repaired),
            "mismatched_orders": [m.to_dict() for m in self.mismatches[:50]],
            "bad_symbols": self.bad_symbols,
            **self.reconciliation.metadata(),
        }


def rest_reach_ms(kind: str, now_ms: int) -> int:
    """The first instant REST still serves for ``kind`` ("trade" or "income"), a minute inside its retention."""
    days = FUTURES_TRADE_RETENTION_DAYS if kind == "trade" else INCOME_RETENTION_DAYS
    return now_ms - days * DAY_MS + REACH_MARGIN_MS


def last_day_beyond_rest(kind: str, now_ms: int) -> date:
    """The last day REST no longer serves whole: the exports' job (a day REST reaches in part counts)."""
    return day_of(rest_reach_ms(kind, now_ms) - 1)


def windows(days: Iterable[date], lo: int, hi: int) -> list[tuple[int, int]]:
    """The days' runs of consecutive days, clipped to ``[lo, hi]``, cut into windows of at most 7 days minus 1 ms."""
    out: list[tuple[int, int]] = []
    for day in sorted(set(days)):
        a, b = max(day_start_ms(day), lo), min(day_end_ms(day), hi)
        if a > b:
            continue
        if out and a == out[-1][1] + 1 and b - out[-1][0] <= FUTURES_SAFE_WINDOW_MS:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


# -- trades --------------------------------------------------------------------------------------------------------
class _Trades:
    def __init__(self, api: FuturesTradesApi, result: FuturesTailResult, market: str) -> None:
        self.api, self.result, self.market = api, result, market
        self.windows: dict[str, list[tuple[int, int]]] = {}  # what was asked: REST returned every trade of these
        self.orders: set[tuple[str, int]] = set()

    def asked(self, row: dict) -> bool:
        """Whether REST must have returned the trade ``row`` (a lake row): its window or its order was asked."""
        t, symbol = int(row["time"].timestamp() * 1000), row["symbol"]
        if symbol in self.result.bad_symbols:
            return False
        return (symbol, row["order_id"]) in self.orders or any(a <= t <= b for a, b in self.windows.get(symbol, ()))

    def call(self, symbol: str, **kw: Any) -> list[dict]:
        self.result.cost.add("user_trades", FUTURES_USER_TRADES_WEIGHT)
        progress.report(f"{self.market} trades", self.result.cost.weight, self.result.cost.weight + 1)
        return self.api.user_trades(symbol, limit=PAGE_LIMIT, **kw)

    def window(self, symbol: str, lo: int, hi: int) -> list[dict]:
        self.windows.setdefault(symbol, []).append((lo, hi))
        rows = self.call(symbol, start_time=lo, end_time=hi)
        out = list(rows)
        while len(rows) == PAGE_LIMIT and max(r["time"] for r in rows) <= hi:
            rows = self.call(symbol, from_id=max(r["id"] for r in rows) + 1)  # fromId cannot go with times
            out += rows
        return [r for r in out if lo <= r["time"] <= hi]

    def of_order(self, symbol: str, order_id: int) -> list[dict]:
        self.orders.add((symbol, order_id))
        rows = self.call(symbol, order_id=order_id)
        out = list(rows)
        while len(rows) == PAGE_LIMIT:  # an order with 1000 fills or more: on by fromId while the order still fills
            more = self.call(symbol, from_id=max(r["id"] for r in rows) + 1)
            rows = [r for r in more if r["orderId"] == order_id]
            out += rows
            if len(more) < PAGE_LIMIT or not rows:
                break
        return out


def run_futures_trades_tail(
    api: FuturesTradesApi,
    *,
    market: str,
    data_dir: str | Path,
    account: str,
    days: Iterable[date],
    now_ms: int,
    assets: dict[str, tuple[str | None, str | None, str | None]] | None = None,
    on_written: Callable[[date, pa.Table], None] | None = None,
    log: Callable[[str], None] = print,
) -> FuturesTailResult:
    """Fetch the trades of ``days`` that REST still serves; ``assets``: symbol -> (base, quote, margin asset)."""
    table = futures_trades.MARKETS[market]
    result = FuturesTailResult(table, Reconciliation(TRADES))
    reach = rest_reach_ms("trade", now_ms)
    wanted = sorted(d for d in set(days) if day_start_ms(d) <= now_ms)
    result.unreachable = [d for d in wanted if day_start_ms(d) < reach]
    served = [d for d in wanted if day_start_ms(d) >= reach]  # a day REST serves only in part is the exports' job
    orders = filled_orders(data_dir, account, futures_orders.MARKETS[market])
    stored = stored_trades(data_dir, account, table)
    covered = stored.days | set(served)
    fetch = _Trades(api, result, market)
    rows: dict[tuple[str, int], dict] = {}
    if served:
        lo, hi = max(reach, day_start_ms(served[0])), min(day_end_ms(served[-1]), now_ms)
        by_symbol: dict[str, list[FilledOrder]] = {}
        for o in orders:
            if o.time_ms <= hi and o.update_ms >= lo:
                by_symbol.setdefault(o.symbol, []).append(o)
        for symbol, mine in sorted(by_symbol.items()):
            fill_days = {d for o in mine for d in _span(o, lo, hi)}
            spans = windows(fill_days & set(served), lo, hi)
            try:
                if len(mine) < len(spans):
                    result.strategies[symbol] = "orders"
                    for o in mine:
                        rows.update(((r["symbol"], r["id"]), r) for r in fetch.of_order(symbol, o.order_id))
                else:
                    result.strategies[symbol] = "windows"
                    for a, b in spans:
                        rows.update(((r["symbol"], r["id"]), r) for r in fetch.window(symbol, a, b))
            except Exception as exc:
                if getattr(exc, "code", None) != BAD_SYMBOL:
                    raise
                result.bad_symbols.append(symbol)
    writer = _Writer(data_dir, account, market, table, result, on_written, assets)
    new = writer.table(list(rows.values()))
    reconcile(data_dir, account, table, new, served, fetch.asked, result.reconciliation)
    writer.write(new, covered, served)
    lake_orders = futures_orders.MARKETS[market]
    for m in mismatches(filled_orders(data_dir, account, lake_orders), stored_trades(data_dir, account, table)):
        if m.trades_qty < m.executed_qty and m.symbol not in result.bad_symbols:
            order = next(o for o in orders if (o.symbol, o.order_id) == (m.symbol, m.order_id))
            if order.time_ms >= reach:  # REST still has all its fills
                writer.write(writer.table(fetch.of_order(m.symbol, m.order_id)), covered, [])
                result.repaired.append((m.symbol, m.order_id))
    result.mismatches = mismatches(
        filled_orders(data_dir, account, lake_orders), stored_trades(data_dir, account, table)
    )
    log(
        f"{market} trades REST: {sum(result.written.values())} rows in {len(result.written)} partitions, "
        f"{len(result.unreachable)} day(s) beyond REST's {FUTURES_TRADE_RETENTION_DAYS} days, "
        f"{len(result.repaired)} order(s) repaired; {sum(result.cost.calls.values())} calls, "
        f"weight {result.cost.weight}"
    )
    return result


def _span(order: FilledOrder, lo: int, hi: int) -> list[date]:
    return days_between(day_of(max(order.time_ms, lo)), day_of(min(order.update_ms, hi)))


# -- income --------------------------------------------------------------------------------------------------------
def run_futures_income_tail(
    api: FuturesTradesApi,
    *,
    market: str,
    data_dir: str | Path,
    account: str,
    days: Iterable[date],
    now_ms: int,
    on_written: Callable[[date, pa.Table], None] | None = None,
    log: Callable[[str], None] = print,
) -> FuturesTailResult:
    """Fetch the income records of ``days`` that REST still serves (every type, every symbol)."""
    table = futures_income.MARKETS[market]
    result = FuturesTailResult(table, Reconciliation(INCOME))
    reach = rest_reach_ms("income", now_ms)
    wanted = sorted(d for d in set(days) if day_start_ms(d) <= now_ms)
    result.unreachable = [d for d in wanted if day_start_ms(d) < reach]
    served = [d for d in wanted if day_start_ms(d) >= reach]
    records: dict[tuple[str, int, str], dict] = {}
    asked = windows(served, reach, now_ms)
    for lo, hi in asked:
        page = 1
        while True:
            result.cost.add("income", FUTURES_INCOME_WEIGHT)
            progress.report(f"{market} income", result.cost.weight, result.cost.weight + 1)
            got = api.income(start_time=lo, end_time=hi, page=page, limit=PAGE_LIMIT)
            records.update(((r["incomeType"], int(r["tranId"]), r["asset"]), r) for r in got)
            if len(got) < PAGE_LIMIT:
                break
            page += 1
    covered = set(lake.list_partitions(data_dir, table, account)) | set(served)
    writer = _Writer(data_dir, account, market, table, result, on_written)
    new = writer.table(list(records.values()))

    def in_window(row: dict) -> bool:
        t = int(row["time"].timestamp() * 1000)
        return any(lo <= t <= hi for lo, hi in asked)

    reconcile(data_dir, account, table, new, served, in_window, result.reconciliation)
    writer.write(new, covered, served)
    log(
        f"{market} income REST: {sum(result.written.values())} records in {len(result.written)} partitions, "
        f"{len(result.unreachable)} day(s) beyond REST's {INCOME_RETENTION_DAYS} days; "
        f"{sum(result.cost.calls.values())} calls, weight {result.cost.weight}"
    )
    return result


class _Writer:
    def __init__(
        self,
        data_dir: str | Path,
        account: str,
        market: str,
        table: str,
        result: FuturesTailResult,
        on_written: Callable[[date, pa.Table], None] | None,
        assets: dict[str, tuple[str | None, str | None, str | None]] | None = None,
    ) -> None:
        self.data_dir, self.account, self.market, self.table_name = data_dir, account, market, table
        self.result, self.on_written, self.assets = result, on_written, assets or {}

    def table(self, rows: list[dict]) -> pa.Table:
        """API rows -> lake rows of this writer's table."""
        common = {"account": self.account, "market": self.market, "source": REST, "ingested_at": datetime.now(UTC)}
        if self.table_name in futures_trades.MARKETS.values():
            return futures_trades.from_api(rows, assets=self.assets, **common)
        return futures_income.from_api(rows, **common)

    def write(self, new: pa.Table, covered: set[date], always: list[date]) -> None:
        """The rows of the ``covered`` days, each into its partition; every day of ``always`` gets one."""
        by_day = lake.split_by_day(self.table_name, new)
        for day in sorted({*always, *(d for d in by_day if d in covered)}):
            self._store(day, by_day.get(day, new.slice(0, 0)))

    def _store(self, day: date, new: pa.Table) -> None:
        merged = write_day(self.data_dir, self.table_name, self.account, day, new)
        self.result.written[day] = merged.num_rows
        if self.on_written is not None:
            self.on_written(day, merged)

"""The REST tail of USDⓈ-M and PM UM orders (``futures_orders``, ``pm_um_orders``), end to end and without Dagster.

For the requested days REST still reaches (90 days back): the orders created on them, per symbol or, where USDⓈ-M
serves it, in one symbol-less call per window (:mod:`pipeline.futures.fetch`), in their current state. Then every
order the lake holds as open is refreshed by ``GET order`` (weight 1), unless the fetch returned it already. An open
order REST no longer shows ended as a zero-fill cancel or expiry more than 3 days after its creation (or 90 days):
only an export can tell how, so it is recorded as *vanished* (:mod:`pipeline.futures.state`). A day is complete when
REST still shows its zero-fill cancels too (created within 3 days). Rows go to the partition of their update day
through the merge that keeps every version. Design: docs/design/futures-rest.md §Orders REST tail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.binance.errors import BadSymbol, InvalidParameter, NoSuchOrder
from pipeline.binance.facts import FUTURES_REST_RETENTION_DAYS, FUTURES_ZERO_FILL_RETENTION_DAYS
from pipeline.futures import state
from pipeline.futures.fetch import Cost, FuturesOrdersApi, Key, OrdersFetcher
from pipeline.futures.reconcile import ORDERS, Reconciliation, reconcile
from pipeline.futures.stored import cursors, latest_orders
from pipeline.storage import lake
from pipeline.storage.schemas import futures_orders
from pipeline.storage.schemas.columns import REST
from pipeline.storage.versions import write_day
from pipeline.times import DAY_MS, day_end_ms, day_of, day_start_ms, days_between
from pipeline.times import now_ms as wall_ms

REACH_MARGIN_MS = 60_000  # ask a minute inside a retention limit, never at its edge
SOURCE = REST
SYMBOL_REQUIRED = -1102


def reach_ms(now_ms: int) -> int:
    """The earliest creation time REST still serves every order of (but zero-fill cancels)."""
    return now_ms - FUTURES_REST_RETENTION_DAYS * DAY_MS + REACH_MARGIN_MS


def complete_from_ms(now_ms: int) -> int:
    """The earliest creation time REST still serves every order of, zero-fill cancels included."""
    return now_ms - FUTURES_ZERO_FILL_RETENTION_DAYS * DAY_MS + REACH_MARGIN_MS


@dataclass
class OrdersTailResult:
    """What one run did; :meth:`metadata` is what its asset records."""

    market: str
    table: str
    written: dict[date, int] = field(default_factory=dict)
    complete: list[date] = field(default_factory=list)  # requested days REST served whole
    partial: list[date] = field(default_factory=list)  # served but for zero-fill cancels: an export's job
    unreachable: list[date] = field(default_factory=list)  # beyond REST's 90 days
    refreshed: int = 0
    vanished: list[Key] = field(default_factory=list)
    beyond_reach_open: int = 0  # open in the lake, created before REST's reach
    bad_symbols: list[str] = field(default_factory=list)
    symbolless: bool | None = None  # a symbol-less call: served (True), refused (False), not tried (None)
    cost: Cost = field(default_factory=Cost)
    reconciliation: Reconciliation = field(default_factory=lambda: Reconciliation(ORDERS))

    def metadata(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "partitions_written": len(self.written),
            "rows_written": sum(self.written.values()),
            "complete_days": len(self.complete),
            "partial_days": [d.isoformat() for d in self.partial][:50],
            "rest_unreachable_days": [d.isoformat() for d in self.unreachable][:50],
            "refreshed_orders": self.refreshed,
            "vanished_orders": [f"{s}:{i}" for s, i in self.vanished][:50],
            "open_beyond_rest": self.beyond_reach_open,
            "bad_symbols": self.bad_symbols,
            "symbolless": self.symbolless,
            **self.reconciliation.metadata(),
            "calls": dict(self.cost.calls),
            "weight": self.cost.weight,
        }


def spans(days: Iterable[date]) -> list[tuple[int, int]]:
    """Runs of consecutive days as (first ms, last ms)."""
    out: list[tuple[int, int]] = []
    for day in sorted(set(days)):
        if out and day_start_ms(day) == out[-1][1] + 1:
            out[-1] = (out[-1][0], day_end_ms(day))
        else:
            out.append((day_start_ms(day), day_end_ms(day)))
    return out


def run_futures_orders_tail(
    api: FuturesOrdersApi,
    *,
    market: str,
    data_dir: str | Path,
    account: str,
    days: Iterable[date],
    now_ms: int,
    symbols: Sequence[str],
    symbolless: bool = False,
    refresh: bool = True,
    on_written: Callable[[date, pa.Table], None] | None = None,
    log: Callable[[str], None] = print,
) -> OrdersTailResult:
    """Fetch the orders of ``days`` REST still serves, refresh the lake's open orders, write both.

    ``symbols``: the symbols to ask (discovery's answer); ``symbolless``: try one call per window without a symbol
    first (USDⓈ-M only), falling back to ``symbols`` if Binance requires one (-1102)."""
    table = futures_orders.MARKETS[market]
    result = OrdersTailResult(market, table)
    reach, full = reach_ms(now_ms), complete_from_ms(now_ms)
    wanted = sorted(d for d in set(days) if day_end_ms(d) <= now_ms)
    served = [d for d in wanted if day_start_ms(d) >= reach]
    result.unreachable = [d for d in wanted if day_start_ms(d) < reach]
    result.complete = [d for d in served if day_start_ms(d) >= full]
    result.partial = [d for d in served if day_start_ms(d) < full]
    stored = latest_orders(data_dir, account, table)
    fetcher = OrdersFetcher(api, market, now_ms, result.cost)
    rows: dict[Key, dict] = {}
    served_spans = spans(served)
    for lo, hi in served_spans:
        rows.update(_span(fetcher, result, lo, hi, symbols, symbolless and market == "usdm", cursors(stored, lo)))
    if refresh:
        _refresh(fetcher, result, stored, rows, reach)
    ingested = datetime.now(UTC)
    new = futures_orders.from_api(
        list(rows.values()), account=account, market=market, source=SOURCE, ingested_at=ingested
    )
    if served:
        _reconcile(data_dir, account, table, new, served_spans, now_ms, result)
    _write(data_dir, account, table, new, result, on_written)
    _remember(data_dir, account, market, result, stored, now_ms)
    log(
        f"{market} orders REST: {sum(result.written.values())} rows in {len(result.written)} partitions, "
        f"{len(result.complete)} complete day(s), {len(result.partial)} without zero-fill cancels, "
        f"{len(result.unreachable)} beyond REST's {FUTURES_REST_RETENTION_DAYS} days; {result.refreshed} open "
        f"order(s) refreshed, {len(result.vanished)} vanished; {sum(result.cost.calls.values())} calls, "
        f"weight {result.cost.weight}"
    )
    return result


def _span(
    fetcher: OrdersFetcher,
    result: OrdersTailResult,
    lo: int,
    hi: int,
    symbols: Sequence[str],
    symbolless: bool,
    cursor: dict[str, int],
) -> dict[Key, dict]:
    if symbolless and result.symbolless is not False:
        try:
            out = fetcher.created(None, lo, hi)
            result.symbolless = True
            return out
        except InvalidParameter as exc:
            if exc.code != SYMBOL_REQUIRED:
                raise
            result.symbolless = False
    out: dict[Key, dict] = {}
    for symbol in symbols:
        try:
            out.update(fetcher.created(symbol, lo, hi, cursor=cursor.get(symbol, 0)))
        except BadSymbol:
            result.bad_symbols.append(symbol)
    return out


def _refresh(fetcher: OrdersFetcher, result: OrdersTailResult, stored: dict, rows: dict[Key, dict], reach: int) -> None:
    """``GET order`` for every order the lake holds as open that this run has not seen yet."""
    for key, o in sorted(stored.items()):
        if not o.is_open or key in rows:
            continue
        if o.time_ms < reach:
            result.beyond_reach_open += 1
            continue
        try:
            rows[key] = fetcher.one(o.symbol, o.order_id)
            result.refreshed += 1
        except (NoSuchOrder, BadSymbol):
            result.vanished.append(key)


def _reconcile(
    data_dir: str | Path,
    account: str,
    table: str,
    new: pa.Table,
    served: list[tuple[int, int]],
    now_ms: int,
    result: OrdersTailResult,
) -> None:
    """Compare the fetched orders with the export rows stored for the days they may lie on, before merging."""
    full = complete_from_ms(now_ms)

    def expected(row: dict) -> bool:
        t = int(row["time"].timestamp() * 1000)
        # a zero-fill cancel, or an order the export saw unfilled that may have become one, is gone after 3 days
        may_be_gone = row["status"] in ("CANCELED", "EXPIRED", "NEW") and not row["executed_qty"]
        return any(lo <= t <= hi for lo, hi in served) and not (may_be_gone and t < full)

    days = days_between(day_of(served[0][0]), day_of(now_ms))
    reconcile(data_dir, account, table, new, days, expected, result.reconciliation)


def _write(
    data_dir: str | Path,
    account: str,
    table: str,
    new: pa.Table,
    result: OrdersTailResult,
    on_written: Callable[[date, pa.Table], None] | None,
) -> None:
    by_day = lake.split_by_day(table, new) if new.num_rows else {}
    have = set(lake.list_partitions(data_dir, table, account))
    for day in result.complete:  # a complete day nothing was updated on still gets its (empty) partition
        if day not in have and day not in by_day:
            by_day[day] = new.slice(0, 0)
    for day, day_rows in sorted(by_day.items()):
        merged = write_day(data_dir, table, account, day, day_rows)
        result.written[day] = merged.num_rows
        if on_written is not None:
            on_written(day, merged)


def _remember(
    data_dir: str | Path, account: str, market: str, result: OrdersTailResult, stored: dict, now_ms: int
) -> None:
    """``seen_ms``: Binance's clock when the order vanished; ``seen_at``: the local clock, which the export ledger
    stamps requests with."""

    def change(section: dict) -> None:
        state.add_days(section, set(result.complete))
        vanished = {k: v for k, v in section.get("vanished", {}).items() if _still_open(k, stored)}
        for symbol, order_id in result.vanished:
            o = stored[(symbol, order_id)]
            vanished.setdefault(
                f"{symbol}:{order_id}",
                {"symbol": symbol, "order_id": order_id, "time": o.time_ms, "seen_ms": now_ms, "seen_at": wall_ms()},
            )
        section["vanished"] = vanished
        section["open_beyond_rest"] = result.beyond_reach_open
        if result.symbolless is not None:
            section["symbolless"] = result.symbolless

    state.update(data_dir, account, market, change)


def _still_open(key: str, stored: dict) -> bool:
    symbol, _, order_id = key.rpartition(":")
    o = stored.get((symbol, int(order_id)))
    return o is not None and o.is_open

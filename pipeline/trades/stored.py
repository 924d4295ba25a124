"""What the lake already says about trades: the filled orders (which symbols and days can hold fills at all) and the
trades stored per order, per symbol and per day. Reads only the few columns it needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from pipeline.storage import lake
from pipeline.times import day_of, days_between

_ORDER_COLUMNS = ["symbol", "order_id", "time", "update_time", "executed_qty", "status"]


@dataclass(frozen=True)
class FilledOrder:
    """An order's latest stored version with an executed quantity: its fills lie in ``[time_ms, update_ms]``."""

    symbol: str
    order_id: int
    time_ms: int
    update_ms: int
    executed_qty: Decimal
    status: str


@dataclass
class StoredTrades:
    """The trades a table holds: per order (count, quantity), the greatest trade id per symbol, and the days."""

    days: set[date] = field(default_factory=set)
    qty_by_order: dict[tuple[str, int], Decimal] = field(default_factory=dict)
    count_by_order: dict[tuple[str, int], int] = field(default_factory=dict)
    last_before: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # symbol -> sorted (time, id)

    def covers_fills_of(self, order: FilledOrder) -> bool:
        """Whether the table covers every day ``order`` can have a fill on (its creation to its last update)."""
        return all(d in self.days for d in days_between(day_of(order.time_ms), day_of(order.update_ms)))

    def holds_every_fill(self, order: FilledOrder) -> bool:
        """Whether nothing of ``order`` is left to fetch: its days are covered and its trades add up."""
        got = self.qty_by_order.get((order.symbol, order.order_id))
        return got == order.executed_qty and self.covers_fills_of(order)

    def last_id_before(self, symbol: str, ms: int) -> int | None:
        """The greatest stored trade id of ``symbol`` at a time before ``ms`` (a fromId cursor can start after it)."""
        best = None
        for at, trade_id in self.last_before.get(symbol, []):
            if at >= ms:
                break
            best = trade_id if best is None else max(best, trade_id)
        return best


def _dataset(data_dir: str | os.PathLike[str], table: str, account: str) -> ds.Dataset | None:
    return lake.account_dataset(data_dir, table, account)


def _ms(column: pa.ChunkedArray) -> list[int]:
    return pc.cast(column, pa.int64()).to_pylist()


def filled_orders(data_dir: str | os.PathLike[str], account: str, table: str = "spot_orders") -> list[FilledOrder]:
    """Latest version of every stored order whose executed quantity is positive, by (symbol, order id)."""
    data = _dataset(data_dir, table, account)
    if data is None:
        return []
    rows = data.to_table(columns=_ORDER_COLUMNS)
    if rows.num_rows == 0:
        return []
    newest = rows.group_by(["symbol", "order_id"]).aggregate([("update_time", "max")])
    joined = rows.join(newest, ["symbol", "order_id"])
    latest = joined.filter(pc.equal(joined["update_time"], joined["update_time_max"]))
    latest = latest.filter(pc.greater(latest["executed_qty"], pa.scalar(0, latest.schema.field("executed_qty").type)))
    out: dict[tuple[str, int], FilledOrder] = {}
    for sym, oid, t, u, qty, status in zip(
        latest["symbol"].to_pylist(),
        latest["order_id"].to_pylist(),
        _ms(latest["time"]),
        _ms(latest["update_time"]),
        latest["executed_qty"].to_pylist(),
        latest["status"].to_pylist(),
        strict=True,
    ):
        out[(sym, oid)] = FilledOrder(sym, oid, t, u, qty, status or "")
    return [out[k] for k in sorted(out)]


def stored_trades(data_dir: str | os.PathLike[str], account: str, table: str = "spot_trades") -> StoredTrades:
    found = StoredTrades(days=set(lake.list_partitions(data_dir, table, account)))
    data = _dataset(data_dir, table, account)
    if data is None:
        return found
    rows = data.to_table(columns=["symbol", "order_id", "trade_id", "qty", "time"])
    if rows.num_rows == 0:
        return found
    sums = rows.group_by(["symbol", "order_id"]).aggregate([("qty", "sum"), ("trade_id", "count")])
    for sym, oid, qty, n in zip(
        sums["symbol"].to_pylist(),
        sums["order_id"].to_pylist(),
        sums["qty_sum"].to_pylist(),
        sums["trade_id_count"].to_pylist(),
        strict=True,
    ):
        found.qty_by_order[(sym, oid)] = qty
        found.count_by_order[(sym, oid)] = n
    for sym, trade_id, at in zip(
        rows["symbol"].to_pylist(), rows["trade_id"].to_pylist(), _ms(rows["time"]), strict=True
    ):
        found.last_before.setdefault(sym, []).append((at, trade_id))
    for pairs in found.last_before.values():
        pairs.sort()
    return found

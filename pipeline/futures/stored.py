"""What the lake already holds of a futures market's orders: the latest version of each, read from the few columns
the REST tail, the refresh and the planners need."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.storage import lake

OPEN = ("NEW", "PARTIALLY_FILLED")
_COLUMNS = ["symbol", "order_id", "time", "update_time", "status", "source"]


@dataclass(frozen=True)
class StoredOrder:
    symbol: str
    order_id: int
    time_ms: int
    update_ms: int
    status: str
    source: str

    @property
    def is_open(self) -> bool:
        return self.status in OPEN


def latest_orders(data_dir: str | os.PathLike[str], account: str, table: str) -> dict[tuple[str, int], StoredOrder]:
    """(symbol, order id) -> the order's latest stored version (greatest update time)."""
    data = lake.account_dataset(data_dir, table, account)  # local or object storage
    if data is None:
        return {}
    rows = data.to_table(columns=_COLUMNS)
    out: dict[tuple[str, int], StoredOrder] = {}
    times = pc.cast(rows["time"], pa.int64()).to_pylist()
    updates = pc.cast(rows["update_time"], pa.int64()).to_pylist()
    for sym, oid, t, u, status, source in zip(
        rows["symbol"].to_pylist(),
        rows["order_id"].to_pylist(),
        times,
        updates,
        rows["status"].to_pylist(),
        rows["source"].to_pylist(),
        strict=True,
    ):
        old = out.get((sym, oid))
        if old is None or u > old.update_ms or (u == old.update_ms and old.is_open and status not in OPEN):
            out[(sym, oid)] = StoredOrder(sym, oid, t, u, status or "", source or "")
    return out


def cursors(orders: dict[tuple[str, int], StoredOrder], before_ms: int) -> dict[str, int]:
    """Per symbol, the greatest stored order id created before ``before_ms``: an ``orderId`` walk from there on
    misses nothing created later."""
    out: dict[str, int] = {}
    for o in orders.values():
        if o.time_ms < before_ms and o.order_id > out.get(o.symbol, 0):
            out[o.symbol] = o.order_id
    return out

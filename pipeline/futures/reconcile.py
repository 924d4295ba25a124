"""REST against export: the same orders, decimals, status, ``time`` and ``update_time`` on the days both cover.

A day partition keeps one row per order and version, so the two sources meet only at the moment one is written
over the other: the REST tail compares what it fetched with the export rows stored for the same days before it
merges. A stored export order REST should still show (created within its reach, not a zero-fill cancel older than
3 days) but did not return is a count mismatch; an order at the same version (``update_time``, to the second the
export files print) with any other value is a value mismatch. An order that changed between the two reads is a new
version, no mismatch. Design: docs/design/futures-rest.md §Reconciliation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa

from pipeline.futures.fetch import Key
from pipeline.storage.schemas.columns import EXPORT

EXPORT_PREFIX = EXPORT  # and lakes' older "export_order_csv"
COMPARED = (
    "client_order_id",
    "price",
    "avg_price",
    "orig_qty",
    "executed_qty",
    "cum_quote",
    "status",
    "type",
    "side",
    "position_side",
    "reduce_only",
    "stop_price",
    "time",
    "update_time",
)
TIMES = ("time", "update_time")


@dataclass
class Mismatch:
    symbol: str
    order_id: int
    column: str
    export: Any
    rest: Any

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) for k, v in vars(self).items()}


@dataclass
class Reconciliation:
    compared: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        return {
            "orders_compared": self.compared,
            "mismatched_orders": len({(m.symbol, m.order_id) for m in self.mismatches}),
            "mismatches": [m.to_dict() for m in self.mismatches[:50]],
        }


def _ms(value: Any) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _same(column: str, export: Any, rest: Any) -> bool:
    if column in TIMES:
        e, r = _ms(export), _ms(rest)
        return e == r or (e is not None and r is not None and e % 1000 == 0 and r - r % 1000 == e)
    if isinstance(export, Decimal) and isinstance(rest, Decimal):
        return export == rest
    return export == rest


def export_rows(stored: pa.Table | None) -> dict[Key, dict]:
    """The export rows of a stored day, by (symbol, order id)."""
    if stored is None or stored.num_rows == 0:
        return {}
    rows = stored.filter(pa.compute.starts_with(stored["source"], EXPORT_PREFIX)).to_pylist()
    return {(r["symbol"], r["order_id"]): r for r in rows}


def compare(exported: dict[Key, dict], rest: dict[Key, dict], expected: set[Key], out: Reconciliation) -> None:
    """``exported``: stored export rows; ``rest``: the REST rows as lake rows (latest state); ``expected``: the
    exported orders REST must return. Appends to ``out``."""
    for key in sorted(expected - set(rest)):
        out.mismatches.append(Mismatch(key[0], key[1], "count", "in export", "missing from REST"))
    for key, e in exported.items():
        r = rest.get(key)
        if r is None or not _same("update_time", e["update_time"], r["update_time"]):
            continue  # not returned, or changed since the export: another version
        out.compared += 1
        for column in COMPARED:
            if not _same(column, e[column], r[column]):
                out.mismatches.append(Mismatch(key[0], key[1], column, e[column], r[column]))

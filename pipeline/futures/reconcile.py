"""REST against export: the same rows, decimals and times on the days both cover, for orders, trades and income.

A day partition keeps one row per key (and, for orders, version), so the two sources meet only at the moment one is
written over the other: each REST tail compares what it fetched with the export rows stored for the same days before
it merges. A stored export row REST should have returned but did not is a count mismatch; a row both hold with any
other value is a value mismatch. Times match to the second the export files print; a column the export file did not
carry (NULL) is not compared. An order at another ``update_time`` changed between the two reads: a new version, no
mismatch. Design: docs/design/futures-rest.md §Reconciliation.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.storage.schemas.columns import EXPORT
from pipeline.storage.versions import stored_day

EXPORT_PREFIX = EXPORT  # and the older "export_order_csv", "export_trade_csv", ... (docs/design/futures-rest.md)
TIMES = ("time", "update_time")


@dataclass(frozen=True)
class Compared:
    """What one kind of row is compared by: ``key`` names a row of a market's table; a row whose ``version``
    differs between the two sources is another version of it (None: a row has one version)."""

    noun: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    version: str | None = None

    def keyed(self, rows: Iterable[dict]) -> dict[tuple, dict]:
        return {tuple(r[k] for k in self.key): r for r in rows}


ORDERS = Compared(
    "orders",
    ("symbol", "order_id"),
    (
        *("client_order_id", "price", "avg_price", "orig_qty", "executed_qty", "cum_quote", "status", "type"),
        *("side", "position_side", "reduce_only", "stop_price", "time", "update_time"),
    ),
    version="update_time",
)
TRADES = Compared(
    "trades",
    ("symbol", "trade_id"),
    (
        *("order_id", "side", "position_side", "price", "qty", "quote_qty", "realized_pnl", "commission"),
        *("commission_asset", "is_buyer", "is_maker", "time"),
    ),
)
INCOME = Compared("records", ("income_type", "tran_id", "asset"), ("symbol", "income", "info", "trade_id", "time"))


@dataclass
class Mismatch:
    key: dict[str, Any]
    column: str
    export: Any
    rest: Any

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in (*self.key.items(), *vars(self).items()) if k != "key"}


@dataclass
class Reconciliation:
    what: Compared
    compared: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        noun = self.what.noun
        return {
            f"{noun}_compared": self.compared,
            f"mismatched_{noun}": len({tuple(m.key.values()) for m in self.mismatches}),
            "mismatches": [m.to_dict() for m in self.mismatches[:50]],
        }


def _ms(value: Any) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _same(column: str, export: Any, rest: Any) -> bool:
    if column in TIMES:
        e, r = _ms(export), _ms(rest)
        return e == r or (e is not None and r is not None and e % 1000 == 0 and r - r % 1000 == e)
    return export == rest


def export_rows(stored: pa.Table | None, what: Compared) -> dict[tuple, dict]:
    """The export rows of a stored day, by ``what.key``."""
    if stored is None or stored.num_rows == 0:
        return {}
    return what.keyed(stored.filter(pc.starts_with(stored["source"], EXPORT_PREFIX)).to_pylist())


def compare(
    exported: dict[tuple, dict], rest: dict[tuple, dict], expected: Callable[[dict], bool], out: Reconciliation
) -> None:
    """``exported``: stored export rows; ``rest``: the fetched rows as lake rows (latest state), both by key;
    ``expected``: whether REST must have returned an export row. Appends to ``out``."""
    what = out.what
    for key, e in sorted(exported.items(), key=lambda kv: str(kv[0])):
        r = rest.get(key)
        if r is None:
            if expected(e):
                named = dict(zip(what.key, key, strict=True))
                out.mismatches.append(Mismatch(named, "count", "in export", "missing from REST"))
            continue
        if what.version is not None and not _same(what.version, e[what.version], r[what.version]):
            continue  # changed since the export: another version
        out.compared += 1
        for column in what.columns:
            if e[column] is not None and not _same(column, e[column], r[column]):
                out.mismatches.append(Mismatch(dict(zip(what.key, key, strict=True)), column, e[column], r[column]))


def reconcile(
    data_dir: str | os.PathLike[str],
    account: str,
    table: str,
    new: pa.Table,
    days: Iterable[date],
    expected: Callable[[dict], bool],
    out: Reconciliation,
) -> None:
    """Compare ``new`` (the fetched rows, lake rows) with the export rows stored on ``days``, before they are
    merged; ``expected``: whether REST must have returned an export row. A later day's version of a key wins."""
    exported: dict[tuple, dict] = {}
    for day in sorted(days):
        exported.update(export_rows(stored_day(data_dir, table, account, day), out.what))
    if exported:
        compare(exported, out.what.keyed(new.to_pylist()), expected, out)

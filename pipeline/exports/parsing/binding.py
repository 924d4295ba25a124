"""Header binding: export columns are bound to schema columns by HEADER NAME, never by position.

Header names are normalised (case, spaces, ``_`` and ``.``) and looked up in :data:`ALIASES` (English and the
Simplified Chinese website export; the table and its sources: docs/export-files.md §Alias table); a ``(UTC...)``
label after a time column's name is its offset label. Unknown columns are kept per row as a JSON object in
``extra`` (and warned about); a missing required column is an error naming the file and the column once the member
turns out to hold rows (an empty export may carry a short header).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pipeline.exports.parsing.errors import MissingColumn, UnsupportedFile
from pipeline.exports.parsing.offsets import parse_offset

# canonical schema column -> accepted header spellings (normalised: lower case, single spaces)
ALIASES: dict[str, tuple[str, ...]] = {
    "uid": ("uid", "user id", "用户id"),
    "time": ("time", "date", "create time", "order time", "created time", "时间"),
    "order_id": ("order no", "order id", "orderid", "order number", "订单编号"),
    "symbol": ("symbol", "contract", "pair", "代币名称/币种名称/币对"),
    "type": ("type", "order type", "类型"),
    "side": ("side", "direction", "方向"),
    "position_side": ("position side",),
    "price": ("price", "order price", "价格"),
    "avg_price": ("average price", "avg price", "avg  price", "average", "平均价格"),
    "orig_qty": ("amount", "quantity", "orig qty", "original amount", "original quantity", "金额"),
    "executed_qty": ("executed amount", "executed qty", "executed", "filled", "executed quantity", "执行金额"),
    "cum_quote": ("executed quote amount", "cum quote", "total", "executed quote", "已执行报价金额"),
    "stop_price": ("stop price", "trigger price", "止损价格"),
    "status": ("status", "状态"),
    "client_order_id": ("client order id", "clientorderid"),
    "time_in_force": ("time in force", "tif"),
    "activate_price": ("activate price", "activation price"),
    "price_rate": ("price rate", "callback rate"),
    "update_time": ("update time", "updated time", "last update time", "更新时间"),
    "reduce_only": ("reduce only", "reduceonly"),
    "close_position": ("close position",),
    "orig_type": ("orig type", "original type"),
    "working_type": ("working type",),
    "price_protect": ("price protect",),
    "price_match": ("price match",),
    "self_trade_prevention_mode": ("self trade prevention mode", "stp mode"),
    "good_till_date": ("good till date",),
}
_ALIAS_INDEX = {alias: canon for canon, names in ALIASES.items() for alias in names}
REQUIRED = (
    "order_id",
    "symbol",
    "side",
    "type",
    "status",
    "price",
    "avg_price",
    "orig_qty",
    "executed_qty",
    "cum_quote",
    "time",
    "update_time",
)
_LABEL = re.compile(r"^(.*?)\s*\(\s*(utc[^)]*)\)\s*$", re.IGNORECASE)


def normalise(name: str) -> str:
    """A header name as :data:`ALIASES` spells it: lower case, ``_``/``.``/runs of spaces as one space."""
    return re.sub(r"[\s_.]+", " ", name.strip().lower()).strip()


@dataclass
class Binding:
    """How one CSV member's header maps onto the schema."""

    names: list[str]  # column names given to the CSV reader (header, de-duplicated)
    columns: dict[str, str]  # schema column -> CSV column name
    unknown: list[tuple[str, str]]  # (key in ``extra``, CSV column name) of unknown columns; keys are unique
    header_offsets: dict[str, int]  # schema column -> offset from a "(UTC...)" header label
    missing: list[str]  # required columns the header lacks (fatal once the member has a data row)
    header: list[str]
    aliases: dict[str, tuple[str, ...]] = field(default_factory=lambda: ALIASES)  # the file kind's alias table
    what: str = "futures ORDER-history export (not trade/transaction history)"

    def require(self, path: Any) -> None:
        """Raise :class:`MissingColumn` for the first required column the header lacks."""
        if not self.missing:
            return
        col = self.missing[0]
        raise MissingColumn(
            f"{path}: required column {col!r} (header {self.aliases[col][0].title()!r} or an alias) is missing; "
            f"header is {self.header!r}. Is this a {self.what}? If Binance renamed the column, add the new name "
            "to the alias table (pipeline/exports/parsing/binding.py for orders, pipeline/trades/export_files.py "
            "for trades and income) and docs/export-files.md, then `orderlake exports reingest ID` (no new "
            "download id).",
            path=path,
            column=col,
        )


def bind_header(
    header: list[str],
    *,
    path: Any,
    aliases: dict[str, tuple[str, ...]] | None = None,
    required: tuple[str, ...] = REQUIRED,
    what: str = "",
) -> tuple[Binding, list[str]]:
    """Map header names to schema columns (by ``aliases``, default the order table); returns the binding and
    warnings (missing columns are in :attr:`Binding.missing`: :meth:`Binding.require` raises for them)."""
    table = aliases if aliases is not None else ALIASES
    index = _ALIAS_INDEX if aliases is None else {a: canon for canon, names in table.items() for a in names}
    warnings: list[str] = []
    names: list[str] = []
    columns: dict[str, str] = {}
    unknown: list[tuple[str, str]] = []
    offsets: dict[str, int] = {}
    for i, raw in enumerate(header):
        original = raw.strip()
        csv_name = original or f"column_{i + 1}"
        if csv_name in names:
            csv_name = f"{csv_name}#{i + 1}"
        names.append(csv_name)
        base, label = original, None
        m = _LABEL.match(original)
        if m:
            base, label = m.group(1), m.group(2)
        canon = index.get(normalise(base))
        if canon is None or canon in columns:
            if canon is not None:
                warnings.append(f"{path}: column {original!r} duplicates another {canon} column; kept in extra")
            unknown.append((_extra_key(original or csv_name, csv_name, unknown), csv_name))
            continue
        columns[canon] = csv_name
        if label is not None:
            off = parse_offset(f"({label})")
            if off is None:
                raise UnsupportedFile(f"{path}: cannot read the timezone label in header {original!r}", path=path)
            offsets[canon] = off
    missing = [c for c in required if c not in columns]
    if unknown:
        warnings.append(f"{path}: unknown column(s) {[u[0] for u in unknown]} kept as JSON in 'extra'")
    binding = Binding(names, columns, unknown, offsets, missing, list(header), table)
    if what:
        binding.what = what
    return binding, warnings


def _extra_key(name: str, csv_name: str, unknown: list[tuple[str, str]]) -> str:
    """The column's key in ``extra``: its header, or its de-duplicated CSV name when another unknown column has the
    same header (a JSON object keeps one value per key, so a repeated key would lose a column)."""
    return csv_name if any(key == name for key, _ in unknown) else name

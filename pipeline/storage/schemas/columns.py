"""Column specs shared by the dataset schema modules (:class:`Col`), and the API-row -> Arrow conversion they use.

Each dataset lists its columns once; its Arrow schema, JSON-key mapping and conversion derive from that list. Ids are
int64, times ``timestamp[ms, UTC]`` with Binance's sentinels as NULL, money an exact ``decimal128(38, scale)``, enums
strings, and API keys the schema does not know a JSON object in ``extra``. Why: docs/design/storage.md §Types.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.storage.decimals import decimal_type, decimals_from_python

TS = pa.timestamp("ms", tz="UTC")
# `source`: futures orders, trades and income and spot trades name the channel the row came by ("rest", "ws",
# "export"); spot orders, order lists and open orders name the endpoint too. docs/design/futures-rest.md §Source values
REST, WS, EXPORT = "rest", "ws", "export"
SOURCES = (
    REST,
    WS,
    EXPORT,
    "rest_allOrders",
    "ws_allOrders",
    "rest_openOrders",
    "ws_openOrders",
    "rest_allOrderList",
    "ws_allOrderList",
    "rest_openOrderList",
    "ws_openOrderList",
)
# What lakes written before the channel values hold in those tables; the views show each as its channel.
LEGACY_SOURCES = {
    "rest_allOrders": REST,
    "export_order_csv": EXPORT,
    "rest_userTrades": REST,
    "rest_income": REST,
    "export_trade_csv": EXPORT,
    "export_income_csv": EXPORT,
    "rest_myTrades": REST,
    "ws_myTrades": WS,
}


@dataclass(frozen=True)
class Col:
    """One column: its Arrow type, the Binance JSON key it comes from (None: filled by the caller)."""

    name: str
    type: pa.DataType
    api: str | None = None
    nullable: bool = True
    sentinel_null: bool = False  # times: values <= 0 (Binance -1/0 sentinels) become NULL

    @property
    def field(self) -> pa.Field:
        return pa.field(self.name, self.type, nullable=self.nullable)


def dec(name: str, api: str, scale: int = 8, *, nullable: bool = True) -> Col:
    return Col(name, decimal_type(scale), api, nullable)


def schema_of(cols: Sequence[Col]) -> pa.Schema:
    return pa.schema([c.field for c in cols])


def to_ms(value: datetime | int) -> int:
    """datetime (aware) or epoch ms -> epoch ms."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware (UTC) datetime")
        return int(value.astimezone(UTC).timestamp() * 1000)
    return int(value)


def _int_values(values: list[Any], col: Col) -> list[int | None]:
    out: list[int | None] = []
    for row, v in enumerate(values):
        if v is None:
            out.append(None)
        elif isinstance(v, bool):
            raise ValueError(f"column {col.name!r}: boolean {v!r} at row {row} is not an integer")
        elif isinstance(v, int):
            out.append(v)
        elif isinstance(v, str) and v.lstrip("-").isdigit():  # some endpoints send ids as strings
            out.append(int(v))
        else:
            raise ValueError(f"column {col.name!r}: {v!r} at row {row} is not an integer")
    return out


def _bool_values(values: list[Any], col: Col) -> list[bool | None]:
    out: list[bool | None] = []
    for row, v in enumerate(values):
        if v is None or isinstance(v, bool):
            out.append(v)
        elif isinstance(v, str) and v.lower() in ("true", "false"):
            out.append(v.lower() == "true")
        else:
            raise ValueError(f"column {col.name!r}: {v!r} at row {row} is not a boolean")
    return out


def convert_values(values: list[Any], col: Col) -> pa.Array:
    """Python values of one column (as Binance sent them) -> Arrow array of the column's type."""
    t = col.type
    if pa.types.is_decimal(t):
        return decimals_from_python(values, scale=t.scale, column=col.name)
    if pa.types.is_timestamp(t):
        ints = _int_values(values, col)
        if col.sentinel_null:
            ints = [None if v is None or v <= 0 else v for v in ints]
        return pa.array(ints, pa.int64()).cast(t)
    if pa.types.is_integer(t):
        return pa.array(_int_values(values, col), t)
    if pa.types.is_boolean(t):
        return pa.array(_bool_values(values, col), t)
    if pa.types.is_string(t):
        for row, v in enumerate(values):
            if v is not None and not isinstance(v, str):
                raise ValueError(f"column {col.name!r}: {v!r} at row {row} is not a string")
        return pa.array(values, t)
    return pa.array(values, t)


# ``extra`` is always this encoder's text: sorted keys, json's own escaping (control characters too), UTF-8 as is.
_EXTRA_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str)
_ITEM_SEPARATOR, _KEY_SEPARATOR = ", ", ": "  # the encoder's (json.dumps') defaults


def extra_text(fields: Mapping[str, Any]) -> str:
    """The ``extra`` JSON object of one row."""
    return _EXTRA_JSON.encode(dict(fields))


def extra_json(rows: Sequence[dict], known: Iterable[str]) -> pa.Array:
    """JSON object of the keys each row has beyond ``known`` (NULL when none)."""
    known_set = set(known)
    out: list[str | None] = []
    for r in rows:
        unknown = {k: v for k, v in r.items() if k not in known_set}
        out.append(extra_text(unknown) if unknown else None)
    return pa.array(out, pa.string())


def extra_from_columns(columns: Mapping[str, pa.Array]) -> pa.Array:
    """:func:`extra_text` of every row of aligned string columns (key -> column; a NULL value is ``null``).

    Vectorised for long columns: each DISTINCT value is encoded once by the same encoder, and the object text is
    joined around the encoded values by Arrow kernels, in the encoder's key order and separators.
    """
    parts: list[Any] = []
    for i, key in enumerate(sorted(columns)):
        parts.append(("{" if i == 0 else _ITEM_SEPARATOR) + _EXTRA_JSON.encode(key) + _KEY_SEPARATOR)
        parts.append(_encoded_values(columns[key]))
    if not parts:
        raise ValueError("extra_from_columns needs at least one column")
    parts.append("}")
    return pc.binary_join_element_wise(*parts, "")


def _encoded_values(values: pa.Array) -> pa.Array:
    """The JSON text of each value of a string column (``null`` for NULL)."""
    encoded = pc.dictionary_encode(values)
    literals = pa.array([_EXTRA_JSON.encode(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return pc.fill_null(literals.take(encoded.indices), "null")


def build_table(
    cols: Sequence[Col],
    rows: Sequence[dict],
    constants: dict[str, Any],
    *,
    ignore_keys: Iterable[str] = (),
) -> pa.Table:
    """Rows of Binance JSON objects -> a table in schema ``cols``.

    ``constants``: per-call values for the columns with no API key (account, source, ingested_at, ...); a
    column with no key and no constant is NULL (unless it is ``extra``, which collects the unknown keys).
    """
    schema = schema_of(cols)
    n = len(rows)
    arrays: list[pa.Array] = []
    for col in cols:
        if col.api is not None:
            try:
                arrays.append(convert_values([r.get(col.api) for r in rows], col))
            except ValueError as exc:
                raise ValueError(f"{exc} (Binance field {col.api!r})") from exc
        elif col.name in constants:
            value = constants[col.name]
            if pa.types.is_timestamp(col.type) and value is not None:
                value = to_ms(value)
                arrays.append(pa.array([value] * n, pa.int64()).cast(col.type))
            else:
                arrays.append(pa.array([value] * n, col.type))
        elif col.name == "extra":
            known = {c.api for c in cols if c.api} | set(ignore_keys)
            arrays.append(extra_json(rows, known))
        else:
            arrays.append(pa.nulls(n, col.type))
    table = pa.Table.from_arrays(arrays, schema=schema)
    return table


def check_required(table: pa.Table, schema: pa.Schema) -> None:
    """Non-nullable columns must have no NULLs (Arrow does not enforce nullability on construction)."""
    for f in schema:
        if not f.nullable and table.column(f.name).null_count:
            raise ValueError(f"column {f.name!r} must not be NULL ({table.column(f.name).null_count} NULL rows)")

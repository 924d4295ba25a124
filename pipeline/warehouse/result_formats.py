"""How ``orderlake sql`` writes a result to a file: faithful to the catalog's exact types in every format.

JSON and NDJSON are read by tools that parse numbers as doubles (JavaScript), so ids and decimals are strings and
no integer beyond 2^53 is a bare number; times are RFC 3339 in UTC with ``Z``. CSV keeps decimals exact and times
RFC 3339, Parquet the native types. The rules are in README's querying section; DuckDB's ``COPY`` streams the rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.warehouse.reads import lit, q

COPY_OPTIONS = {
    "csv": "FORMAT csv, HEADER",
    "json": "FORMAT json, ARRAY true",
    "ndjson": "FORMAT json",
    "parquet": "FORMAT parquet",
}
MAX_SAFE_INTEGER = 2**53 - 1  # the largest integer a double (a JavaScript number) holds exactly
_INTEGERS = {
    "tinyint",
    "smallint",
    "integer",
    "bigint",
    "hugeint",
    "utinyint",
    "usmallint",
    "uinteger",
    "ubigint",
    "uhugeint",
}
_WIDE_INTEGERS = {"bigint", "hugeint", "ubigint", "uhugeint"}  # may exceed 2^53
_TIMESTAMPS = {"timestamp with time zone", "timestamp", "timestamp_ms", "timestamp_s"}
_NESTED = {"list", "array", "struct", "map"}


def is_id_column(name: str) -> bool:
    """``id``, ``*_id`` and ``*_ids``: identifiers, written as strings in JSON whatever their size."""
    lowered = name.lower()
    return lowered == "id" or lowered.endswith(("_id", "_ids"))


def rfc3339(expr: str, type_id: str) -> str:
    """A timestamp as ``YYYY-MM-DDTHH:MM:SS.fffZ`` in UTC (six fractional digits when it has microseconds).

    Naive timestamps are taken as UTC: the session runs in UTC and the catalog's times are all UTC.
    """
    if type_id == "timestamp_ns":
        return f"(replace(CAST({expr} AS VARCHAR), ' ', 'T') || 'Z')"
    utc = f"timezone('UTC', {expr})" if type_id == "timestamp with time zone" else f"CAST({expr} AS TIMESTAMP)"
    return (
        f"CASE WHEN epoch_us({utc}) % 1000 = 0 THEN strftime({utc}, '%Y-%m-%dT%H:%M:%S.%gZ') "
        f"ELSE strftime({utc}, '%Y-%m-%dT%H:%M:%S.%fZ') END"
    )


def json_expr(expr: str, dtype: Any, name: str, depth: int = 0) -> str:
    """``expr`` of DuckDB type ``dtype`` as the JSON writer should see it (recursing into lists, structs, maps)."""
    kind = dtype.id
    if kind == "decimal":
        return f"CAST({expr} AS VARCHAR)"
    if kind in _INTEGERS:
        if is_id_column(name):
            return f"CAST({expr} AS VARCHAR)"
        if kind in _WIDE_INTEGERS:  # a number while a double holds it exactly, else a string
            return (
                f"CASE WHEN {expr} BETWEEN -{MAX_SAFE_INTEGER} AND {MAX_SAFE_INTEGER} THEN CAST({expr} AS JSON) "
                f"ELSE to_json(CAST({expr} AS VARCHAR)) END"
            )
        return expr
    if kind in _TIMESTAMPS or kind == "timestamp_ns":
        return rfc3339(expr, kind)
    var = f"v{depth}"
    if kind in ("list", "array"):
        inner = json_expr(var, dtype.children[0][1], name, depth + 1)
        return expr if inner == var else f"list_transform({expr}, lambda {var}: {inner})"
    if kind == "struct":
        fields = [
            (field, json_expr(f"struct_extract({expr}, {lit(field)})", t, field, depth)) for field, t in dtype.children
        ]
        packed = "struct_pack(" + ", ".join(f"{q(field)} := {e}" for field, e in fields) + ")"
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE {packed} END"
    if kind == "map":
        value = json_expr(f"{var}.value", dtype.children[1][1], name, depth + 1)
        if value == f"{var}.value":
            return expr
        entry = f"{{'key': {var}.key, 'value': {value}}}"
        return f"map_from_entries(list_transform(map_entries({expr}), lambda {var}: {entry}))"
    return expr


def csv_expr(expr: str, dtype: Any, name: str) -> str:
    """CSV cells: decimals and integers as DuckDB prints them (exact), times RFC 3339, nested values as JSON text."""
    kind = dtype.id
    if kind in _TIMESTAMPS or kind == "timestamp_ns":
        return rfc3339(expr, kind)
    if kind in _NESTED:
        return f"CAST(to_json({json_expr(expr, dtype, name)}) AS VARCHAR)"
    return expr


def parquet_expr(expr: str, dtype: Any, name: str) -> str:
    """Native types, except 128-bit integers, which DuckDB would write as a (rounding) DOUBLE."""
    if dtype.id in ("hugeint", "uhugeint"):
        return f"CAST({expr} AS DECIMAL(38,0))"
    return expr


_EXPRESSIONS = {"csv": csv_expr, "json": json_expr, "ndjson": json_expr, "parquet": parquet_expr}


def faithful_select(con: Any, query: str, fmt: str) -> str:
    """A SELECT over ``query`` whose columns are written faithfully in ``fmt`` (names as the query gives them;
    DuckDB suffixes a repeated name with ``_1``)."""
    source = f"(\n{query}\n) AS result"  # newlines: a trailing "-- comment" must not swallow the parenthesis
    rel = con.sql(f"SELECT * FROM {source}")
    convert = _EXPRESSIONS[fmt]
    columns = [
        f"{convert(q(name), dtype, name)} AS {q(name)}" for name, dtype in zip(rel.columns, rel.types, strict=True)
    ]
    return f"SELECT {', '.join(columns)} FROM {source}"


def copy_result(con: Any, query: str, fmt: str, path: Path) -> None:
    """Write ``query``'s result to ``path`` in ``fmt`` (csv, json, ndjson or parquet), streamed by DuckDB."""
    con.execute(f"COPY ({faithful_select(con, query, fmt)}) TO {lit(path.as_posix())} ({COPY_OPTIONS[fmt]})")

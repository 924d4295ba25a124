"""How the catalog's views read Parquet: quoting, ``read_parquet`` over day files or compacted months, file
footers, and the :class:`Source` of one table (see docs/design/catalog.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.storage import schemas

HIVE_TYPES = "{'account': VARCHAR, 'date': DATE}"


def table_glob(root: Path, table: str) -> str:
    """Glob of a table's files under ``root`` (the lake itself or a catalog snapshot of it)."""
    return (root / table).as_posix() + "/*/*/*.parquet"


def q(name: str) -> str:
    """Quote an identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    """Quote a string literal."""
    return "'" + text.replace("'", "''") + "'"


def read_parquet_sql(files: str | Sequence[str], *, union_by_name: bool = True, hive: bool = True) -> str:
    """read_parquet over a glob or a list of files.

    hive=True: day files, ``account``/``date`` come from the path. hive=False: compacted months, which hold them as
    columns (their ``month=`` directory must not become a column).
    """
    src = lit(files) if isinstance(files, str) else "[" + ", ".join(lit(f) for f in files) + "]"
    union = "true" if union_by_name else "false"
    if not hive:
        return f"read_parquet({src}, hive_partitioning = false, union_by_name = {union})"
    return f"read_parquet({src}, hive_partitioning = true, union_by_name = {union}, hive_types = {HIVE_TYPES})"


def parquet_columns(path: Path) -> list[tuple[str, str, str]]:
    """(path, physical type, logical type) of every leaf column, from the footer.

    Not the repetition: DuckDB writes a column without NULLs as ``required``, so it varies with the data, and it
    does not change how a column is read.
    """
    import pyarrow.parquet as pq

    schema = pq.read_metadata(path).schema
    return [(c.path, c.physical_type, str(c.logical_type)) for c in map(schema.column, range(len(schema)))]


def schemas_differ(paths: Iterable[Path]) -> bool:
    """Whether the files do not all have the same columns of the same types (union_by_name is needed)."""
    first = None
    for path in paths:
        cols = parquet_columns(path)
        if first is None:
            first = cols
        elif cols != first:
            return True
    return False


def objects_differ(con: Any, uris: Sequence[str]) -> bool:
    """:func:`schemas_differ` for ``s3://`` objects, from their footers through ``con`` (DuckDB keeps the bytes it
    fetched, so the build's later reads of the same footers send no request)."""
    files = "[" + ", ".join(lit(u) for u in uris) + "]"
    shape = "list((name, type, logical_type, num_children) ORDER BY column_id)"
    sql = f"SELECT count(DISTINCT s) FROM (SELECT {shape} AS s FROM parquet_schema({files}) GROUP BY file_name)"
    return int(con.execute(sql).fetchall()[0][0]) > 1


def compact_sort_key(table: str) -> tuple[str, ...]:
    """Row order of a compacted month: date, then the lake's own sort within a day (symbol, time, id)."""
    return ("date", *schemas.spec_for(table).sort_by)


def describe(con: Any, relation_sql: str) -> dict[str, str]:
    rel = con.sql(relation_sql)
    return {n: str(t) for n, t in zip(rel.columns, rel.types, strict=True)}


@dataclass(frozen=True)
class Source:
    """What one table's view reads: compacted closed months and day files (a list from the snapshot, or the live
    lake's glob, which may gain files with new columns after the build and so always merges schemas by name)."""

    compacted: tuple[Path, ...] = ()
    days: tuple[Path | str, ...] | str = ()  # paths, a glob, or objects' ``s3://`` URIs

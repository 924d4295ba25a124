"""The Parquet lake: ``$ORDERLAKE_DATA_DIR/lake/<table>/account=<account>/date=YYYY-MM-DD/part-0.parquet``.

Exactly one file per partition, replaced atomically (a crash leaves the old file or the new one). Every table is
validated against its dataset schema and sorted by its sort key before it is written. An empty partition means
"fetched, no rows", a missing one "not fetched". :func:`stage_partition` and :func:`publish_partition` split a write
in two for bulk loads. With ``ORDERLAKE_LAKE_URL=s3://…`` (:mod:`pipeline.storage.lakefs`) the same layout lives
under the S3 prefix, and a partition is one object PUT. Design: docs/design/storage.md §Layout and atomic writes.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.errors import DataError
from pipeline.storage import lakefs
from pipeline.storage.atomic import atomic_file, fsync_path, publish, temp_path
from pipeline.storage.schemas import TABLES, futures_orders, module_for, spec_for
from pipeline.storage.schemas.columns import check_required
from pipeline.times import DAY_MS, day_start_ms

LAKE_DIR = "lake"
PART_FILE = "part-0.parquet"
TEMP_PREFIX = ".part-0."
TEMP_SUFFIX = ".tmp"  # never *.parquet: invisible to read_parquet('.../*.parquet')
STALE_TEMP_SECONDS = 3600  # a temp file this old belongs to a crashed writer
ROW_GROUP_SIZE = 128 * 1024
COMPRESSION = "zstd"
_ACCOUNT_RE = re.compile(r"^[A-Za-z0-9_.@+-]{1,128}$")
_FUTURES_MARKET = {table: market for market, table in futures_orders.MARKETS.items()}


class LakeError(DataError):
    """Base class of the lake's own errors: the data does not fit the lake (retrying cannot help)."""


class SchemaMismatch(LakeError, ValueError):
    """A table does not match its dataset schema (missing/extra column, wrong type, NULL in a required column)."""


class PartitionMismatch(LakeError, ValueError):
    """Rows do not belong in the partition they are written to (other account, other day, other market)."""


class PartitionMissing(LakeError, FileNotFoundError):
    """The partition has never been written."""


@dataclass(frozen=True)
class WriteResult:
    path: Path | str  # a local path, or the ``s3://`` URI of the object
    rows: int
    bytes: int


@dataclass(frozen=True)
class StagedPartition:
    """A validated, sorted, fsynced partition file outside the lake, waiting for :func:`publish_partition`."""

    table: str
    account: str
    day: date
    path: Path
    rows: int
    bytes: int


# -- paths --------------------------------------------------------------------------------------------------------
def _check_account(account: str) -> str:
    # The account becomes a directory name: refuse anything that could escape the lake or confuse Hive parsing.
    if not isinstance(account, str) or not _ACCOUNT_RE.match(account) or account in (".", ".."):
        raise ValueError(
            f"account {account!r} is not usable as a partition value; use letters, digits and _ . @ + - only"
        )
    return account


def _check_table(table: str) -> str:
    if table not in TABLES:
        raise ValueError(f"unknown lake table {table!r}; known tables: {', '.join(TABLES)}")
    return table


def table_dir(data_dir: str | os.PathLike[str], table: str) -> Path:
    return Path(data_dir) / LAKE_DIR / _check_table(table)


def account_dir(data_dir: str | os.PathLike[str], table: str, account: str) -> Path:
    return table_dir(data_dir, table) / f"account={_check_account(account)}"


def partition_dir(data_dir: str | os.PathLike[str], table: str, account: str, day: date) -> Path:
    return account_dir(data_dir, table, account) / f"date={day.isoformat()}"


def partition_path(data_dir: str | os.PathLike[str], table: str, account: str, day: date) -> Path:
    return partition_dir(data_dir, table, account, day) / PART_FILE


def _remote(data_dir: str | os.PathLike[str]) -> lakefs.LakeLocation | None:
    """The data dir's lake when it is on object storage; None for the local lake."""
    where = lakefs.location(data_dir)
    return None if where.is_local else where


def _key(where: lakefs.LakeLocation, table: str, account: str, day: date | None = None) -> str:
    parts = [_check_table(table), f"account={_check_account(account)}"]
    return where.path(*parts, *((f"date={day.isoformat()}", PART_FILE) if day is not None else ()))


# -- validation ---------------------------------------------------------------------------------------------------
def conform(table_name: str, table: pa.Table, *, combine: bool = True) -> pa.Table:
    """Check ``table`` against the dataset schema and return it with the schema's column order and fields, in one
    chunk per column unless ``combine`` is off (a caller that sorts next copies the rows anyway)."""
    schema = spec_for(_check_table(table_name)).schema
    got = set(table.column_names)
    missing = [n for n in schema.names if n not in got]
    extra = [n for n in table.column_names if n not in set(schema.names)]
    if missing or extra or len(got) != table.num_columns:
        raise SchemaMismatch(
            f"{table_name}: columns do not match the schema (missing: {missing or '-'}, unexpected: "
            f"{extra or '-'}); build rows with {module_for(table_name).__name__}.from_api or cast to its schema"
        )
    for f in schema:
        actual = table.schema.field(f.name).type
        if actual != f.type:
            raise SchemaMismatch(f"{table_name}: column {f.name!r} has type {actual}, the schema says {f.type}")
    try:
        check_required(table, schema)
    except ValueError as exc:
        raise SchemaMismatch(f"{table_name}: {exc}") from None
    table = table.select(schema.names)
    return pa.Table.from_arrays((table.combine_chunks() if combine else table).columns, schema=schema)


def _day_bounds(day: date) -> tuple[pa.Scalar, pa.Scalar]:
    lo = day_start_ms(day)
    hi = lo + DAY_MS
    return pa.scalar(lo, pa.int64()), pa.scalar(hi, pa.int64())


def _check_partition(table_name: str, table: pa.Table, account: str, day: date, check_day: bool) -> None:
    if table.num_rows == 0:
        return
    accounts = pc.unique(table.column("account")).to_pylist()
    if accounts != [account]:
        raise PartitionMismatch(f"{table_name}: rows of account(s) {accounts} written to account={account!r}")
    market = _FUTURES_MARKET.get(table_name)
    if market is not None:
        markets = pc.unique(table.column("market")).to_pylist()
        if markets != [market]:
            raise PartitionMismatch(f"{table_name}: rows of market(s) {markets}; this table holds {market!r}")
    if check_day:
        col = spec_for(table_name).partition_by
        ms = pc.cast(table.column(col), pa.int64())
        lo, hi = _day_bounds(day)
        mm = pc.min_max(ms)
        if pc.less(mm["min"], lo).as_py() or pc.greater_equal(mm["max"], hi).as_py():
            raise PartitionMismatch(
                f"{table_name}: rows with {col} outside {day.isoformat()} (UTC) written to date={day.isoformat()}; "
                "split rows by the UTC date of that column (write_partitions_by_day does)"
            )


def check_rows(table_name: str, table: pa.Table, account: str) -> None:
    """Schema, account and market of rows streamed into a partition in pieces (the day is checked by the caller)."""
    conform(table_name, table)
    _check_partition(table_name, table, account, date(1970, 1, 1), check_day=False)


def sort_for_lake(table_name: str, table: pa.Table) -> pa.Table:
    """Rows in the spec's ``sort_by`` order (stable); a table already in that order is returned as it is, without a
    copy."""
    keys = spec_for(table_name).sort_by
    if table.num_rows <= 1:
        return table
    order = _sort_order(table, keys)
    if order is None:
        return table.sort_by([(k, "ascending") for k in keys])
    if np.array_equal(order, np.arange(len(order))):
        return table
    indices = pa.array(order)
    # An all-NULL column stays all-NULL: building it costs nothing, while taking from it is a large share of the take
    # time of an export day (the usual export header leaves about a third of the columns empty).
    columns = [pa.nulls(len(order), c.type) if c.null_count == len(order) else c.take(indices) for c in table.columns]
    return pa.Table.from_arrays(columns, schema=table.schema)


def _sort_order(table: pa.Table, keys: Sequence[str]) -> np.ndarray | None:
    """The stable ascending order by ``keys`` from numpy's lexsort over int64 views of the keys (strings by the rank
    of their dictionary value), which is faster than Arrow's multi-key ``sort_indices`` on an export day. None when a
    key has NULLs or no such view: the caller then lets Arrow sort."""
    views: list[np.ndarray] = []
    for k in keys:
        col = table.column(k)
        if col.null_count:
            return None
        arr = col.combine_chunks()
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            encoded = pc.dictionary_encode(arr)
            rank = np.empty(len(encoded.dictionary), dtype=np.int64)
            rank[pc.sort_indices(encoded.dictionary).to_numpy()] = np.arange(len(rank))
            views.append(rank[encoded.indices.to_numpy()])
        elif pa.types.is_signed_integer(arr.type) or pa.types.is_timestamp(arr.type):
            views.append(pc.cast(arr, pa.int64()).to_numpy())
        else:
            return None
    return np.lexsort(views[::-1])


# -- writing ------------------------------------------------------------------------------------------------------
_HIGH_CARDINALITY = {"client_order_id", "list_client_order_id", "extra"}


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """Dictionary-encode only low-cardinality strings (symbol, status, ...): it shrinks them a lot, while on ids,
    decimals and times it costs write time and usually bytes."""
    return [f.name for f in schema if pa.types.is_string(f.type) and f.name not in _HIGH_CARDINALITY]


def _write_file(table: pa.Table, fh: BinaryIO) -> None:
    """Serialize to an open file (separate so tests can simulate a crash mid-write)."""
    pq.write_table(
        table,
        fh,
        compression=COMPRESSION,
        row_group_size=ROW_GROUP_SIZE,
        use_dictionary=dictionary_columns(table.schema),
    )


def remove_stale_temps(directory: Path, max_age_seconds: float = STALE_TEMP_SECONDS) -> int:
    """Delete temp files of crashed writers (older than ``max_age_seconds``); returns how many."""
    removed = 0
    if not directory.is_dir():
        return 0
    cutoff = time.time() - max_age_seconds
    for p in directory.iterdir():
        if p.name.startswith(TEMP_PREFIX) and p.name.endswith(TEMP_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                if p.stat().st_mtime <= cutoff:
                    p.unlink()
                    removed += 1
    return removed


def _write_durably(path: Path, table: pa.Table) -> int:
    """Encode ``table`` into the new file ``path`` and fsync it; returns its size. A failure removes the file.

    The file is created exclusively, then written through Arrow's own file (not a Python file object, whose every
    write would wait for the GIL while the parse holds it)."""
    try:
        with open(path, "xb"):
            pass
        with pa.OSFile(str(path), "wb") as sink:
            _write_file(table, sink)  # type: ignore[arg-type]
        fsync_path(path)
        return path.stat().st_size
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise


def fsync_file(fh: BinaryIO) -> None:
    os.fsync(fh.fileno())


def atomic_write_table(final: Path, table: pa.Table) -> int:
    """Write ``table`` to ``final`` atomically (:func:`pipeline.storage.atomic.atomic_file`); returns the size."""
    with atomic_file(final, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX) as fh:
        _write_file(table, fh)
        return fh.tell()


def _prepare(table: str, account: str, day: date, arrow_table: pa.Table, check_day: bool) -> pa.Table:
    data = conform(table, arrow_table, combine=False)
    _check_partition(table, data, account, day, check_day)
    return sort_for_lake(table, data)


def write_partition(
    data_dir: str | os.PathLike[str],
    table: str,
    account: str,
    day: date,
    arrow_table: pa.Table,
    *,
    check_day: bool = True,
) -> WriteResult:
    """Replace one partition atomically with ``arrow_table`` (validated, sorted); empty tables are written too.

    ``check_day``: refuse rows whose ``partition_by`` column is not on ``day`` (UTC). Turn off only for a dataset whose
    partitioning deliberately differs.
    """
    data = _prepare(table, account, day, arrow_table, check_day)
    remote = _remote(data_dir)
    if remote is not None:
        return _put_table(remote, _key(remote, table, account, day), data)
    final = partition_path(data_dir, table, account, day)
    size = atomic_write_table(final, data)
    remove_stale_temps(final.parent)
    return WriteResult(final, data.num_rows, size)


def _put_table(where: lakefs.LakeLocation, key: str, data: pa.Table) -> WriteResult:
    """Encode in memory (a partition is one day) and PUT it: the object appears whole or not at all."""
    buffer = pa.BufferOutputStream()
    _write_file(data, buffer)  # type: ignore[arg-type]
    body = buffer.getvalue()
    where.put(body, key)
    return WriteResult(where.uri(key), data.num_rows, body.size)


def stage_partition(
    staging_dir: str | os.PathLike[str],
    table: str,
    account: str,
    day: date,
    arrow_table: pa.Table,
    *,
    check_day: bool = True,
) -> StagedPartition:
    """Validate, sort, encode and fsync one partition into ``staging_dir`` (an existing directory outside the lake,
    on the lake's filesystem so that publishing is a rename); the lake is not touched."""
    _check_account(account)
    data = _prepare(table, account, day, arrow_table, check_day)
    path = temp_path(Path(staging_dir), prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    size = _write_durably(path, data)
    return StagedPartition(table, account, day, path, data.num_rows, size)


def publish_partition(data_dir: str | os.PathLike[str], staged: StagedPartition) -> WriteResult:
    """Replace the staged partition's lake file with it atomically and durably (``os.replace``, directory fsync).

    The staged file is consumed. Across filesystems it is first copied to a fsynced temp file next to the target.
    """
    remote = _remote(data_dir)
    if remote is not None:
        key = _key(remote, staged.table, staged.account, staged.day)
        remote.put_file(staged.path, key)
        staged.path.unlink()
        return WriteResult(remote.uri(key), staged.rows, staged.bytes)
    final = partition_path(data_dir, staged.table, staged.account, staged.day)
    publish(staged.path, final, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    remove_stale_temps(final.parent)
    return WriteResult(final, staged.rows, staged.bytes)


def split_by_day(table_name: str, arrow_table: pa.Table) -> dict[date, pa.Table]:
    """Rows grouped by the UTC date of the spec's ``partition_by`` column."""
    col = spec_for(table_name).partition_by
    if arrow_table.num_rows == 0:
        return {}
    days = pc.cast(pc.floor_temporal(arrow_table.column(col), unit="day"), pa.int64())
    out: dict[date, pa.Table] = {}
    epoch = date(1970, 1, 1)
    for ms in pc.unique(days).to_pylist():
        if ms is None:
            raise SchemaMismatch(f"{table_name}: NULL {col}; every row needs it to find its partition")
        out[epoch + timedelta(milliseconds=ms)] = arrow_table.filter(pc.equal(days, ms))
    return out


def write_partitions_by_day(
    data_dir: str | os.PathLike[str],
    table: str,
    account: str,
    arrow_table: pa.Table,
    days: Iterable[date] | None = None,
) -> dict[date, WriteResult]:
    """Split rows by UTC day of the spec's ``partition_by`` column and write each day's partition.

    With ``days``: every given day is written (EMPTY ones included, so their coverage is recorded), and a row
    outside ``days`` is an error (writing it would replace a partition the caller did not mean to touch).
    """
    data = conform(table, arrow_table)
    groups = split_by_day(table, data)
    wanted = sorted(set(days)) if days is not None else sorted(groups)
    outside = sorted(set(groups) - set(wanted))
    if outside:
        raise PartitionMismatch(
            f"{table}: rows fall on days outside the requested ones: {', '.join(d.isoformat() for d in outside[:5])}"
            f"{' ...' if len(outside) > 5 else ''}; widen `days` or filter the rows"
        )
    empty = data.slice(0, 0)
    return {d: write_partition(data_dir, table, account, d, groups.get(d, empty)) for d in wanted}


# -- reading ------------------------------------------------------------------------------------------------------
def read_partition(data_dir: str | os.PathLike[str], table: str, account: str, day: date) -> pa.Table:
    """One partition's rows, in the dataset schema."""
    remote = _remote(data_dir)
    path = partition_path(data_dir, table, account, day) if remote is None else _key(remote, table, account, day)
    if not partition_exists(data_dir, table, account, day):
        raise PartitionMissing(f"{table}: no partition for account={account} date={day.isoformat()} ({path})")
    return pq.read_table(path, schema=spec_for(table).schema, filesystem=remote.fs if remote else None)


def open_partition(data_dir: str | os.PathLike[str], table: str, account: str, day: date) -> pq.ParquetFile | None:
    """The partition's Parquet file (footer read, rows not yet), or None when it has never been written."""
    remote = _remote(data_dir)
    if remote is None:
        path = partition_path(data_dir, table, account, day)
        return pq.ParquetFile(path) if path.is_file() else None
    key = _key(remote, table, account, day)
    try:
        return pq.ParquetFile(remote.fs.open_input_file(key))
    except FileNotFoundError:
        return None


def partition_exists(data_dir: str | os.PathLike[str], table: str, account: str, day: date) -> bool:
    remote = _remote(data_dir)
    if remote is None:
        return partition_path(data_dir, table, account, day).is_file()
    return remote.is_file(_key(remote, table, account, day))


@contextlib.contextmanager
def local_copy(
    data_dir: str | os.PathLike[str], table: str, account: str, day: date, scratch: Path
) -> Iterator[Path | None]:
    """A local file with the stored partition, for a merge that reads it: the lake file itself, or a download into
    ``scratch`` removed when the block ends; None when there is no partition."""
    remote = _remote(data_dir)
    if remote is None:
        path = partition_path(data_dir, table, account, day)
        yield path if path.is_file() else None
        return
    target = temp_path(scratch, prefix=TEMP_PREFIX, suffix=".stored" + TEMP_SUFFIX)
    try:
        try:
            with remote.fs.open_input_stream(_key(remote, table, account, day)) as src, open(target, "xb") as dst:
                while chunk := src.read(8 << 20):
                    dst.write(chunk)
        except FileNotFoundError:
            found = False
        else:
            found = True
        yield target if found else None
    finally:
        target.unlink(missing_ok=True)


def account_dataset(data_dir: str | os.PathLike[str], table: str, account: str) -> ds.Dataset | None:
    """Every partition of an account as one dataset in the table's schema; None when there is none."""
    remote = _remote(data_dir)
    if remote is None:
        root = account_dir(data_dir, table, account)
        files = sorted(p.as_posix() for p in root.glob(f"date=*/{PART_FILE}")) if root.is_dir() else []
        fs = None
    else:
        files = sorted(i.path for i in remote.files(_key(remote, table, account)) if i.base_name == PART_FILE)
        fs = remote.fs
    if not files:
        return None
    return ds.dataset(files, format="parquet", schema=spec_for(table).schema, filesystem=fs)


def list_partitions(data_dir: str | os.PathLike[str], table: str, account: str) -> list[date]:
    """Days that have a partition file (empty partitions included), ascending."""
    remote = _remote(data_dir)
    if remote is not None:
        names = (
            i.path.rsplit("/", 2)[-2] for i in remote.files(_key(remote, table, account)) if i.base_name == PART_FILE
        )
        return sorted({date.fromisoformat(n[5:]) for n in names if n.startswith("date=") and _is_day(n[5:])})
    root = account_dir(data_dir, table, account)
    if not root.is_dir():
        return []
    out: list[date] = []
    for p in root.iterdir():
        if p.name.startswith("date=") and (p / PART_FILE).is_file():
            try:
                out.append(date.fromisoformat(p.name[5:]))
            except ValueError:
                continue
    return sorted(out)


def _is_day(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def list_accounts(data_dir: str | os.PathLike[str], table: str) -> list[str]:
    remote = _remote(data_dir)
    if remote is not None:
        names = remote.children(remote.path(_check_table(table)))
        return sorted(n[8:] for n in names if n.startswith("account="))
    root = table_dir(data_dir, table)
    if not root.is_dir():
        return []
    return sorted(p.name[8:] for p in root.iterdir() if p.is_dir() and p.name.startswith("account="))

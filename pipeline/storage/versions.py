"""Which rows of a key to keep: the newest version within one write, and a day's new rows merged with stored ones.

Every helper takes a table's :class:`~pipeline.storage.schemas.TableSpec` (or its name): its ``key``, its ``version``
column (greater = newer) and its ``partition_by`` column, so they work for any lake table. :func:`write_day` writes a
day as the spec's ``write`` mode says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.storage import lake
from pipeline.storage.schemas import TableSpec, spec_for
from pipeline.times import DAY_MS


@dataclass(frozen=True)
class Versioning:
    """A table's key, version and partition-day columns, and the int64 key column that pre-filters repeats."""

    key: tuple[str, ...]
    version: str
    day_column: str
    id_column: str

    @classmethod
    def of(cls, table: str | TableSpec) -> Versioning:
        spec = spec_for(table)
        ids = [k for k in spec.key if pa.types.is_integer(spec.schema.field(k).type)]
        if not ids:
            raise ValueError(f"{spec.name}: no integer key column to find repeated keys by")
        return cls(spec.key, spec.version, spec.partition_by, ids[0])

    @property
    def columns(self) -> list[str]:
        """What repeat detection needs of every row."""
        return list(dict.fromkeys((*self.key, self.version, self.day_column)))


# -- one write: the newest version of each key ----------------------------------------------------------------------
def repeated_keys(keys: pa.Table, v: Versioning) -> pa.Table | None:
    """The keys that occur more than once in ``keys`` (rows of :attr:`Versioning.columns`, in input order), with
    their greatest version as ``<version>_max``; None when every key is unique.

    Ids repeat rarely, so a sort of the int64 id column finds the few candidates first: a hash aggregation over every
    key of a million-row write would cost far more memory. Ids in strictly monotonic order (an export sorted by
    time) cannot repeat, and proving it costs a fraction of the sort.
    """
    ids = keys[v.id_column].to_numpy()
    if np.all(ids[1:] > ids[:-1]) or np.all(ids[1:] < ids[:-1]):
        return None
    ids = np.sort(ids)
    repeated = np.unique(ids[1:][ids[1:] == ids[:-1]])
    if not len(repeated):
        return None
    keys = keys.filter(pc.is_in(keys[v.id_column], value_set=pa.array(repeated)))
    counts = keys.group_by(list(v.key)).aggregate([(v.version, "count"), (v.version, "max")])
    dups = counts.filter(pc.greater(counts[f"{v.version}_count"], 1))
    return dups if dups.num_rows else None


def days_with_repeats(keys: pa.Table, dups: pa.Table | None, v: Versioning) -> set[int]:
    """Days (since the epoch) holding a row of a repeated key: the only days a merge must deduplicate."""
    if dups is None:
        return set()
    hit = keys.filter(pc.is_in(keys[v.id_column], value_set=dups[v.id_column]))
    return set((pc.cast(hit[v.day_column], pa.int64()).to_numpy() // DAY_MS).tolist())


def duplicate_rows(keys: pa.Table, dups: pa.Table | None, v: Versioning) -> dict[int, int]:
    """Per day (since the epoch): rows a merge drops as older versions of a key repeated on that day (each day
    keeps one row per key)."""
    if dups is None:
        return {}
    hit = keys.filter(pc.is_in(keys[v.id_column], value_set=dups[v.id_column]))
    day = pc.divide(pc.cast(hit[v.day_column], pa.int64()), DAY_MS)
    per_key = hit.select(list(v.key)).append_column("_day", day).group_by([*v.key, "_day"]).aggregate([])
    rows = dict(zip(*np.unique(day.to_numpy(), return_counts=True), strict=True))
    keys_per_day = dict(zip(*np.unique(per_key["_day"].to_numpy(), return_counts=True), strict=True))
    return {int(d): int(n - keys_per_day[d]) for d, n in rows.items() if n > keys_per_day[d]}


# -- a day's partition: new rows merged with the stored ones ----------------------------------------------------------
def merge_day(old: pa.Table | None, new: pa.Table, table: str | TableSpec) -> pa.Table:
    """The day's rows after a re-fetch: newest version per key, unchanged rows as they were.

    The stored row wins when it is newer, or the same version with the same content (it keeps its ``ingested_at``);
    a same-version row with other content is Binance correcting itself, so the new one wins. A stored key the new
    rows lack is kept. Vectorised (a join on the key columns, then column-wise comparisons), because a re-backfill
    rewrites every day and busy days hold thousands of orders.
    """
    if old is None or old.num_rows == 0:
        return new
    spec = spec_for(table)
    keys, version = list(spec.key), spec.version
    left = old.select(keys).append_column("_old", pa.array(np.arange(old.num_rows)))
    right = new.select(keys).append_column("_new", pa.array(np.arange(new.num_rows)))
    joined = left.join(right, keys=keys, join_type="full outer")
    pairs = joined.filter(pc.and_(pc.is_valid(joined["_old"]), pc.is_valid(joined["_new"])))
    mine, theirs = old.take(pairs["_old"]), new.take(pairs["_new"])
    same_version = pc.equal(mine[version], theirs[version])
    keep_old = pc.or_(pc.greater(mine[version], theirs[version]), pc.and_(same_version, _same_content(mine, theirs)))
    old_rows = _ids(joined.filter(pc.is_null(joined["_new"]))["_old"], pairs["_old"].filter(keep_old))
    new_rows = _ids(joined.filter(pc.is_null(joined["_old"]))["_new"], pairs["_new"].filter(pc.invert(keep_old)))
    return pa.concat_tables([old.take(old_rows), new.take(new_rows)])


def _ids(*columns: pa.ChunkedArray) -> pa.ChunkedArray:
    return pa.chunked_array([chunk for col in columns for chunk in col.chunks], pa.int64())


def _same_content(a: pa.Table, b: pa.Table) -> pa.Array:
    """Row-wise equality of two aligned tables over every column but ``ingested_at`` (NULL equals NULL)."""
    same = pa.array(np.ones(a.num_rows, dtype=bool))
    for name in a.column_names:
        if name == "ingested_at":
            continue
        x, y = a[name], b[name]
        if pa.types.is_nested(x.type):  # Arrow compares no lists: the few order-list members, in Python
            eq = pa.array([u == v for u, v in zip(x.to_pylist(), y.to_pylist(), strict=True)], pa.bool_())
        else:
            eq = pc.or_(pc.fill_null(pc.equal(x, y), False), pc.and_(pc.is_null(x), pc.is_null(y)))
        same = pc.and_(same, eq)
    return same


def stored_day(data_dir: str | os.PathLike[str], table: str | TableSpec, account: str, day: date) -> pa.Table | None:
    """The day's stored rows, or None when the day has no partition."""
    try:
        return lake.read_partition(data_dir, spec_for(table).name, account, day)
    except lake.PartitionMissing:
        return None


def write_day(
    data_dir: str | os.PathLike[str], table: str | TableSpec, account: str, day: date, new: pa.Table
) -> pa.Table:
    """Write one day as the table's spec says, atomically; returns the rows now stored.

    ``merge-versions``: ``new`` is merged into the stored day (:func:`merge_day`), so the day never shrinks.
    ``snapshot``: ``new`` replaces the day (an empty snapshot is an answer: nothing was open).
    """
    spec = spec_for(table)
    rows = merge_day(stored_day(data_dir, spec, account, day), new, spec) if spec.write == "merge-versions" else new
    lake.write_partition(data_dir, spec.name, account, day, rows)
    return rows

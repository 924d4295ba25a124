"""A stream of record batches -> one lake partition per UTC day of the table's ``partition_by`` column, all or nothing.

Days are staged as validated, sorted, fsynced Parquet files under ``$DATA_DIR/tmp/`` on writer threads while the
stream is still being read; only once the whole stream has been read and deduplicated (newest version per key of the
table's spec, :mod:`pipeline.storage.versions`) are the partitions swapped in, each atomically
(:mod:`pipeline.storage.lake`). An error anywhere (in the stream, a writer, the dedupe) leaves the lake untouched and
removes the staging directory. A day is written as the spec's ``write`` mode says: merged with the stored day
(``merge-versions``) or replaced by the stream's rows of that day (``replace-day``, ``snapshot``).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.storage import lake
from pipeline.storage.schemas import TableSpec, spec_for
from pipeline.storage.versions import Versioning, days_with_repeats, keep_newest, merge_day, repeated_keys, stored_day
from pipeline.times import DAY_MS, day_of, day_start_ms

# Threads that encode day partitions while the stream goes on, and how many handed-over days may be in their hands
# at once (running or waiting; each holds its rows in memory). On 2 cores one thread was slightly slower and three
# no faster; more days in flight made no difference.
WRITE_THREADS = 2
MAX_QUEUED_WRITES = 2 * WRITE_THREADS
# A day with no new row for this many batches is encoded; a later row costs only a merge.
COLD_BATCHES = 4
# Rows of not yet encoded days held in memory at most (Arrow bytes); above it all of them are spilled to disk.
BUFFER_BYTES = 64 << 20


@dataclass(frozen=True)
class DaysWritten:
    """What :func:`write_days` published: every requested day (empty ones included), and what it left out."""

    partitions: dict[date, lake.WriteResult]
    duplicates_dropped: int  # rows of a repeated key that were not the newest version
    outside: dict[date, int]  # rows on days that were not requested: never written


def day_number(day: date) -> int:
    """Days since 1970-01-01 (the writer's day keys)."""
    return day_start_ms(day) // DAY_MS


def day_from_number(number: int) -> date:
    return day_of(number * DAY_MS)


@dataclass(frozen=True)
class _Spilled:
    """One day's rows in a spill file (Arrow IPC) of :class:`DayWriter`: its batch number ``batch``."""

    path: Path
    batch: int
    schema: pa.Schema

    def read(self) -> pa.Table:
        with pa.memory_map(str(self.path)) as src:
            return pa.Table.from_batches([pa.ipc.open_file(src).get_batch(self.batch)], schema=self.schema)


_Part = lake.StagedPartition | _Spilled | pa.Table  # a staged file, spilled batches, or rows still in memory


class DayWriter:
    """Batches -> one staged Parquet file per UTC day, encoded by a thread pool WHILE the stream goes on, so that
    encoding overlaps reading instead of following it.

    A day is handed to the pool once no row for it arrived for :data:`COLD_BATCHES` batches: a stream in time order
    has moved past it. When the rows held in memory exceed :data:`BUFFER_BYTES` (a stream out of time order, where
    no day goes cold), every buffered day is spilled instead, as is, into one Arrow IPC file: cheap to write and to
    map back. A day with more than one part (spills, or rows that came after it was encoded) is merged at the end,
    its parts in stream order. Rows of days outside ``wanted`` are only counted: they are never written.
    """

    def __init__(
        self, staging: Path, spec: TableSpec, account: str, wanted: set[int] | None, pool: ThreadPoolExecutor
    ) -> None:
        self._staging, self._table, self._account, self._wanted, self._pool = staging, spec.name, account, wanted, pool
        self._schema = spec.schema
        self._day_column = spec.partition_by
        self._buffered: dict[int, list[pa.RecordBatch]] = {}
        self._day_bytes: dict[int, float] = {}  # day -> Arrow bytes of its buffered rows
        self._last_batch: dict[int, int] = {}  # day -> number of the last batch with a row on it
        self._batches = 0
        self._spills = 0
        self._queued: deque[Future[lake.StagedPartition]] = deque()
        self._parts: dict[int, list[Future[lake.StagedPartition] | _Spilled | pa.Table]] = {}
        self.counts: dict[int, int] = {}  # day -> rows in the stream (outside days included)

    def add(self, batch: pa.RecordBatch) -> None:
        self._batches += 1
        row_bytes = batch.nbytes / batch.num_rows  # nbytes is costly: once per batch, not per piece
        for day, piece in split_by_day(batch, self._day_column):
            self.counts[day] = self.counts.get(day, 0) + piece.num_rows
            if self._wanted is None or day in self._wanted:
                self._buffered.setdefault(day, []).append(piece)
                self._day_bytes[day] = self._day_bytes.get(day, 0.0) + piece.num_rows * row_bytes
                self._last_batch[day] = self._batches
        if sum(self._day_bytes.values()) > BUFFER_BYTES:
            self._spill()
        for day in [d for d, last in self._last_batch.items() if last <= self._batches - COLD_BATCHES]:
            self._submit(day)

    def flush(self) -> None:
        """Hand over every day still in memory (the end of the stream); a day with earlier parts keeps its last rows
        in memory, as it is merged at the end anyway."""
        for day in list(self._buffered):
            if day in self._parts:
                self._parts[day].append(self._take(day))
            else:
                self._submit(day)

    def parts(self) -> dict[int, list[_Part]]:
        """Every day's parts in stream order, once written (raises the first writer error)."""
        return {day: [p.result() if isinstance(p, Future) else p for p in parts] for day, parts in self._parts.items()}

    def stage(self, day: int, rows: pa.Table) -> lake.StagedPartition:
        return lake.stage_partition(self._staging, self._table, self._account, day_from_number(day), rows)

    def read_part(self, part: _Part) -> pa.Table:
        """A part's rows; a staged file that is read back is deleted (its rows are staged again, merged)."""
        if isinstance(part, pa.Table):
            return part
        if isinstance(part, _Spilled):
            return part.read()
        rows = pq.read_table(part.path, schema=self._schema)
        part.path.unlink()
        return rows

    def _take(self, day: int) -> pa.Table:
        del self._last_batch[day], self._day_bytes[day]
        return pa.Table.from_batches(self._buffered.pop(day), schema=self._schema)

    def _submit(self, day: int) -> None:
        future = self._pool.submit(self.stage, day, self._take(day))
        self._parts.setdefault(day, []).append(future)
        self._queued.append(future)
        while len(self._queued) > MAX_QUEUED_WRITES:  # back-pressure: queued days hold memory too
            self._queued.popleft().result()

    def _spill(self) -> None:
        self._spills += 1
        path = self._staging / f"spill-{self._spills}.arrow"
        with pa.ipc.new_file(str(path), self._schema) as out:
            for number, day in enumerate(list(self._buffered)):
                # One batch per day: a scattered stream leaves small pieces, and writing them one by one is slow.
                out.write_batch(self._take(day).combine_chunks().to_batches()[0])
                self._parts.setdefault(day, []).append(_Spilled(path, number, self._schema))


def split_by_day(batch: pa.RecordBatch, column: str) -> list[tuple[int, pa.RecordBatch]]:
    """A batch's rows grouped by UTC day (since the epoch) of ``column``; a one-day batch is not copied."""
    days = pc.cast(batch.column(column), pa.int64()).to_numpy(zero_copy_only=False) // DAY_MS
    if days.min() == days.max():  # floor division above: correct for days before 1970 too
        return [(int(days[0]), batch)]
    order = np.argsort(days, kind="stable")
    sorted_days = days[order]
    if not np.all(order[:-1] <= order[1:]):
        batch = batch.take(pa.array(order))
    bounds = np.flatnonzero(np.diff(sorted_days)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(sorted_days)]))
    return [(int(sorted_days[s]), batch.slice(int(s), int(e - s))) for s, e in zip(starts, ends, strict=True)]


def write_days(
    batches: Iterable[pa.RecordBatch],
    *,
    data_dir: str | os.PathLike[str],
    table: str | TableSpec,
    account: str,
    days: Iterable[date] | None = None,
) -> DaysWritten:
    """Write ``batches`` (in ``table``'s schema) as the DAILY partitions of ``account``, newest version per key of the
    table's spec, each day as its ``write`` mode says.

    With ``days``: every given day is written (empty ones too, so their coverage is recorded) and rows on other days
    are only counted in :attr:`DaysWritten.outside` (writing them would replace a partition the caller did not mean
    to touch). Without: the days that have rows.
    """
    spec = spec_for(table)
    wanted = {day_number(d) for d in days} if days is not None else None
    staging = Path(data_dir) / "tmp" / f"days-{spec.name}-{uuid.uuid4().hex}"
    staging.mkdir(parents=True, exist_ok=False)
    try:
        with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
            try:
                writer = DayWriter(staging, spec, account, wanted, pool)
                return _write(batches, writer, data_dir, spec, account, wanted, pool)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # no writer may still write into the staging dir
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write(
    batches: Iterable[pa.RecordBatch],
    writer: DayWriter,
    data_dir: str | os.PathLike[str],
    spec: TableSpec,
    account: str,
    wanted: set[int] | None,
    pool: ThreadPoolExecutor,
) -> DaysWritten:
    """Stage every day while reading, find repeated keys, then dedupe the days holding them (and merge them with the
    stored days for ``merge-versions``) and publish."""
    versioning = Versioning.of(spec)
    key_schema = pa.schema([spec.schema.field(n) for n in versioning.columns])
    keys: list[pa.RecordBatch] = []
    for batch in batches:
        writer.add(batch)
        keys.append(batch.select(versioning.columns))
    writer.flush()
    key_table = pa.Table.from_batches(keys, schema=key_schema)
    dups = repeated_keys(key_table, versioning)
    rework = days_with_repeats(key_table, dups, versioning)  # found while the writer threads encode the last days
    parts = writer.parts()
    days = sorted(wanted) if wanted is not None else sorted(writer.counts)

    def final(day: int) -> tuple[lake.StagedPartition, int]:
        """The day's one staged file; merged from its parts, re-staged after dedupe, or merged with the stored day,
        where needed."""
        mine = parts.get(day, [])
        stored = stored_day(data_dir, spec, account, day_from_number(day)) if spec.write == "merge-versions" else None
        if stored is None and len(mine) == 1 and isinstance(mine[0], lake.StagedPartition) and day not in rework:
            return mine[0], 0
        rows = pa.concat_tables([writer.read_part(p) for p in mine]) if mine else spec.schema.empty_table()
        rows, dropped = keep_newest(rows, dups, versioning)
        if stored is not None:
            rows = merge_day(stored, rows, spec)
        return writer.stage(day, rows), dropped

    finals = list(pool.map(final, days))
    published = list(pool.map(lambda f: lake.publish_partition(data_dir, f[0]), finals))
    outside = {day_from_number(d): n for d, n in writer.counts.items() if wanted is not None and d not in wanted}
    return DaysWritten(
        partitions={day_from_number(d): r for d, r in zip(days, published, strict=True)},
        duplicates_dropped=sum(n for _, n in finals),
        outside=outside,
    )

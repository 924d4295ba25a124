"""A stream of record batches -> one lake partition per UTC day of the table's ``partition_by`` column, all or nothing.

Days are staged as validated, sorted, fsynced Parquet files under ``$DATA_DIR/tmp/`` on writer threads while the
stream is still being read; only once the whole stream has been read and each day merged with its stored rows (newest
version per key, stored keys kept: :mod:`pipeline.storage.day_merge`) are the partitions swapped in, each atomically
(:mod:`pipeline.storage.lake`). An error anywhere (in the stream, a writer, the merge) leaves the lake untouched and
removes the staging directory.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.storage import lake
from pipeline.storage.day_merge import merge_day_stream
from pipeline.storage.leftovers import lake_lock, owner_tag
from pipeline.storage.schemas import TableSpec, spec_for
from pipeline.storage.versions import Versioning, days_with_repeats, duplicate_rows, repeated_keys
from pipeline.times import DAY_MS, day_of, day_start_ms

# Threads that encode day partitions while the stream goes on, and how many handed-over days may be in their hands
# at once (running or waiting; each holds its rows in memory). On 2 cores one thread was slightly slower and three
# no faster; more days in flight made no difference.
WRITE_THREADS = 2
MAX_QUEUED_WRITES = 2 * WRITE_THREADS
# Threads that publish the staged days: renames and fsyncs (uploads on S3) wait on the disk, not the CPU, so more of
# them overlap that wait.
PUBLISH_THREADS = 8
# A day with no new row for this many batches is encoded; a later row costs only a merge.
COLD_BATCHES = 4
# Rows of not yet encoded days held in memory at most (Arrow bytes); above it all of them are spilled to disk.
BUFFER_BYTES = 64 << 20


@dataclass(frozen=True)
class DaysWritten:
    """What :func:`write_days` published: every requested day (empty ones included), and what it left out."""

    partitions: dict[date, lake.WriteResult]  # every day written (a stored day the stream had no row for is not)
    duplicates_dropped: int  # rows of a key repeated on one day that were not its newest version
    rows_per_day: dict[date, int]  # the stream's rows per day, one per key (before merging with stored rows)


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
    its parts in stream order.
    """

    def __init__(self, staging: Path, spec: TableSpec, account: str, pool: ThreadPoolExecutor) -> None:
        self.staging, self.spec, self.account, self._pool = staging, spec, account, pool
        self._schema = spec.schema
        self._day_column = spec.partition_by
        self._buffered: dict[int, list[pa.RecordBatch]] = {}
        self._day_bytes: dict[int, float] = {}  # day -> Arrow bytes of its buffered rows
        self._last_batch: dict[int, int] = {}  # day -> number of the last batch with a row on it
        self._batches = 0
        self._spills = 0
        self._queued: deque[Future[lake.StagedPartition]] = deque()
        self._parts: dict[int, list[Future[lake.StagedPartition] | _Spilled | pa.Table]] = {}
        self.counts: dict[int, int] = {}  # day -> rows in the stream

    def add(self, batch: pa.RecordBatch) -> None:
        self._batches += 1
        row_bytes = batch.nbytes / batch.num_rows  # nbytes is costly: once per batch, not per piece
        for day, piece in split_by_day(batch, self._day_column):
            self.counts[day] = self.counts.get(day, 0) + piece.num_rows
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
        return lake.stage_partition(self.staging, self.spec.name, self.account, day_from_number(day), rows)

    def part_batches(self, part: _Part) -> Iterator[pa.RecordBatch]:
        """A part's rows batch by batch, so a merge never holds a whole day; a staged file read is deleted."""
        if isinstance(part, pa.Table):
            yield from part.to_batches()
        elif isinstance(part, _Spilled):
            yield from part.read().to_batches()
        else:
            yield from pq.ParquetFile(part.path).iter_batches(batch_size=64 * 1024)
            part.path.unlink()

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
        path = self.staging / f"spill-{self._spills}.arrow"
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
    before_publish: Callable[[dict[date, int]], None] | None = None,
) -> DaysWritten:
    """MERGE ``batches`` (in ``table``'s schema) into the DAILY partitions of ``account``, keeping versions.

    Every row goes to the day of its ``partition_by`` column, inside ``days`` or not. A day's stored rows are merged
    with the new ones (:mod:`pipeline.storage.day_merge`): a stored key the stream lacks is kept, the newest version
    of a key wins, so a day is never replaced by a subset. A day of ``days`` without rows and without a partition
    gets an empty one (its coverage is known); an existing one is left as it is. ``before_publish`` gets the
    stream's rows per day once the stream is read, before anything is merged or published: raising there leaves the
    lake as it was.
    """
    spec = spec_for(table)
    if spec.write != "merge-versions":  # a snapshot replaces its day: versions.write_day
        raise ValueError(f"{spec.name}: write_days merges days; the table's spec says {spec.write!r}")
    wanted = {day_number(d) for d in days} if days is not None else set()
    staging = Path(data_dir) / "tmp" / f"days-{spec.name}-{owner_tag()}-{uuid.uuid4().hex}"
    staging.mkdir(parents=True, exist_ok=False)
    try:
        with lake_lock(data_dir, spec.name, account), ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
            try:
                writer = DayWriter(staging, spec, account, pool)
                return _write(batches, writer, data_dir, wanted, before_publish)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # no writer may still write into the staging dir
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write(
    batches: Iterable[pa.RecordBatch],
    writer: DayWriter,
    data_dir: str | os.PathLike[str],
    wanted: set[int],
    before_publish: Callable[[dict[date, int]], None] | None,
) -> DaysWritten:
    """Stage every day while reading, find repeated keys, merge the days that need it, then publish them all."""
    spec, account = writer.spec, writer.account
    versioning = Versioning.of(spec)
    key_schema = pa.schema([spec.schema.field(n) for n in versioning.columns])
    keys: list[pa.RecordBatch] = []
    for batch in batches:
        writer.add(batch)
        keys.append(batch.select(versioning.columns))
    writer.flush()
    if before_publish is not None:
        before_publish({day_from_number(d): n for d, n in sorted(writer.counts.items())})
    key_table = pa.Table.from_batches(keys, schema=key_schema)
    dups = repeated_keys(key_table, versioning)
    rework = days_with_repeats(key_table, dups, versioning)
    dropped = duplicate_rows(key_table, dups, versioning)
    del keys, key_table  # every row's key: not held through the merges, which need the memory
    pa.default_memory_pool().release_unused()
    parts = writer.parts()
    finals: dict[int, lake.StagedPartition] = {}
    stored_days = set(lake.list_partitions(data_dir, spec.name, account))  # one listing, also on object storage
    for day in sorted(set(parts) | wanted):
        mine = parts.get(day, [])
        stored = day_from_number(day) in stored_days
        if not mine:
            if not stored:  # coverage of a day without rows; a stored day is left as it is
                finals[day] = writer.stage(day, spec.schema.empty_table())
            continue
        if len(mine) == 1 and isinstance(mine[0], lake.StagedPartition) and day not in rework and not stored:
            finals[day] = mine[0]
            continue
        with lake.local_copy(data_dir, spec.name, account, day_from_number(day), writer.staging) as stored_file:
            finals[day] = merge_day_stream(
                writer.staging,
                spec,
                account,
                day_from_number(day),
                (b for p in mine for b in writer.part_batches(p)),
                stored=stored_file,
                repeats=day in rework,
            )
    with ThreadPoolExecutor(max_workers=min(PUBLISH_THREADS, max(1, len(finals)))) as publishers:
        results = publishers.map(lambda f: lake.publish_partition(data_dir, f), finals.values())
        published = dict(zip(finals, results, strict=True))
    return DaysWritten(
        partitions={day_from_number(d): r for d, r in sorted(published.items())},
        duplicates_dropped=sum(dropped.values()),
        rows_per_day={day_from_number(d): n - dropped.get(d, 0) for d, n in sorted(writer.counts.items())},
    )

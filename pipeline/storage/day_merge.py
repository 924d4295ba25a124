"""One day's new rows merged with what the lake already holds for that day, streamed through DuckDB.

The merge keeps every stored key the new rows lack (a day is never replaced by a subset), keeps the newest version of
each key, and keeps a stored row that the new rows repeat unchanged (so it keeps its ``ingested_at``). DuckDB sorts
and deduplicates out of core under a memory limit, so a day of millions of rows is never held in memory at once:
the rows come in as an Arrow stream and go out as row groups. See docs/design/exports.md §Partitions.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.storage import lake
from pipeline.storage.schemas import TableSpec
from pipeline.times import DAY_MS, day_start_ms

# DuckDB's share of the 600 MB an export ingest may use; it spills above it. Its limit does not bound what each
# thread's sort holds besides, so ONE thread (docs/design/exports.md §Partitions).
MEMORY_LIMIT = "128MB"
THREADS = 1
OUT_BATCH_ROWS = 64 * 1024
_SRC, _SEQ = "_src", "_seq"


def _with_sequence(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The new rows tagged with their stream position: among equal versions the last row wins."""
    seq = 0
    for batch in batches:
        n = batch.num_rows
        if not n:
            continue
        arrays = [*batch.columns, pa.array(np.arange(seq, seq + n, dtype=np.int64))]
        seq += n
        yield pa.RecordBatch.from_arrays(arrays, schema=schema.append(pa.field(_SEQ, pa.int64())))


def merge_day_stream(
    staging: Path,
    spec: TableSpec,
    account: str,
    day: date,
    new: Iterable[pa.RecordBatch],
    *,
    stored: Path | None,
    repeats: bool = True,
) -> lake.StagedPartition:
    """Stage ``day``'s partition: the ``new`` rows (in ``spec``'s schema, stream order) merged with the ``stored``
    partition file, newest version per ``spec.key``; returns the staged file for :func:`lake.publish_partition`.

    The new rows are copied once into a table of a DuckDB database file under ``staging`` (an in-memory temporary
    table ran out of memory for a one-day file of millions of rows) before the merge reads them: an Arrow stream can
    be read only once, and DuckDB may plan more than one scan of a view over it (DuckDB 1.5 returned no rows at all
    for the windowed query straight over the stream). Without a stored file or a repeated key (``repeats``) the
    merge is a sort.
    """
    schema = spec.schema
    key = ", ".join(spec.key)
    version = spec.version
    content = ", ".join(n for n in schema.names if n != "ingested_at")
    cols = ", ".join(schema.names)
    reader = pa.RecordBatchReader.from_batches(schema.append(pa.field(_SEQ, pa.int64())), _with_sequence(new, schema))
    old = f" UNION ALL SELECT {cols}, 0 AS {_SRC}, 0::BIGINT AS {_SEQ} FROM read_parquet(?)" if stored else ""
    load = f"CREATE TABLE src AS SELECT {cols}, 1 AS {_SRC}, {_SEQ} FROM new_rows{old}"
    if stored is None and not repeats:  # nothing to merge: DuckDB only sorts, which spills to disk (no window)
        merge = f"SELECT {cols} FROM src ORDER BY {', '.join(spec.sort_by)}"
    else:  # rank 2: a stored row the new rows repeat unchanged; 1: a new row; 0: a stored row the new rows changed
        merge = f"""
            WITH tagged AS (
                SELECT *, count(*) FILTER (WHERE {_SRC} = 1)
                    OVER (PARTITION BY {key}, {version}, hash({content})) AS _same_new
                FROM src
            )
            SELECT {cols} FROM tagged
            QUALIFY row_number() OVER (
                PARTITION BY {key}
                ORDER BY {version} DESC,
                         CASE WHEN {_SRC} = 0 AND _same_new > 0 THEN 2 WHEN {_SRC} = 1 THEN 1 ELSE 0 END DESC,
                         {_SEQ} DESC
            ) = 1
            ORDER BY {", ".join(spec.sort_by)}
        """
    path = lake.temp_path(staging, prefix=lake.TEMP_PREFIX, suffix=lake.TEMP_SUFFIX)
    spill = staging / f"duckdb-{path.name}"
    spill.mkdir()
    con = duckdb.connect(  # a database file in the spill dir: the copied rows are evicted to disk under the limit
        str(spill / "merge.duckdb"),
        config={
            "memory_limit": MEMORY_LIMIT,
            "threads": THREADS,
            "temp_directory": str(spill),
            "preserve_insertion_order": False,  # the query orders its output; insertion order costs memory
        },
    )
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("new_rows", reader)
        con.execute(load, [str(stored)] if stored else [])
        con.unregister("new_rows")
        result = con.execute(merge)
        rows = _write_stream(path, spec, account, day, result.to_arrow_reader(OUT_BATCH_ROWS))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    return lake.StagedPartition(spec.name, account, day, path, rows, path.stat().st_size)


def _write_stream(path: Path, spec: TableSpec, account: str, day: date, reader: pa.RecordBatchReader) -> int:
    """Row groups from DuckDB's sorted stream, each cast back to the lake schema (DuckDB hands out microseconds;
    a cast that would lose anything raises) and checked like any partition; fsynced; returns the row count."""
    lo, hi = day_start_ms(day), day_start_ms(day) + DAY_MS
    table, schema, day_column = spec.name, spec.schema, spec.partition_by
    rows = 0
    with open(path, "xb") as fh:
        with pq.ParquetWriter(
            fh, schema, compression=lake.COMPRESSION, use_dictionary=lake.dictionary_columns(schema)
        ) as writer:
            for batch in reader:
                part = pa.Table.from_batches([batch]).cast(schema)
                lake.check_rows(table, part, account)
                ms = part.column(day_column).cast(pa.int64())
                if part.num_rows and not (lo <= pa.compute.min(ms).as_py() and pa.compute.max(ms).as_py() < hi):
                    raise lake.PartitionMismatch(f"{table}: merged rows outside {day.isoformat()} (a bug)")
                writer.write_table(part, row_group_size=lake.ROW_GROUP_SIZE)
                rows += part.num_rows
            if rows == 0:
                writer.write_table(schema.empty_table())
        fh.flush()
        lake.fsync_file(fh)
    return rows

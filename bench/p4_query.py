"""P4, query latency: our daily partitions against the same rows in one consolidated Parquet file, through DuckDB.

The partitions are written by the lake's own writer (``pipeline.storage.lake.write_partition``, schema
``spot_orders``) and queried the way a BI tool reads them: through a catalog built by
``pipeline.warehouse.catalog.build_catalog`` (closed months compacted, ``union_by_name`` only where schemas
differ), view ``spot_order_versions`` (every stored row), attached read-only. The raw day files read directly are
reported too, as context: that is what the views would cost without compaction. The consolidated file holds the
same rows in the same order (the lake's sort within each day, days ascending), written with the lake's Parquet
settings, plus the ``date`` column the hive path provides, so every source answers the very same SQL.

Orders are generated with numpy and Arrow buffers (decimals straight from their 128-bit integer words), never a
Python loop per row: 5M rows cost seconds, the 730 partition writes (each fsynced) dominate.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.core import Context, Figure, ScenarioResult, Target, fmt_s
from pipeline.storage import lake, lakefs
from pipeline.storage.lakefs import LakeLocation
from pipeline.storage.schemas import spot_orders
from pipeline.times import DAY_MS, day_start_ms
from pipeline.warehouse.catalog import build_catalog
from pipeline.warehouse.reads import HIVE_TYPES, lit, read_parquet_sql

SEED = 7
ACCOUNT = "main"
TABLE = "spot_orders"
FIRST_DAY = date(2024, 12, 1)
SYMBOLS = (
    "BTCUSDT",
    "ETHUSDT",
    "BNBUSDT",
    "SOLUSDT",
    "XRPUSDT",
    "DOGEUSDT",
    "ADAUSDT",
    "LINKUSDT",
    "TRXUSDT",
    "DOTUSDT",
    "LTCUSDT",
    "AVAXUSDT",
)
STATUSES = ("FILLED", "FILLED", "FILLED", "CANCELED", "CANCELED", "PARTIALLY_FILLED", "EXPIRED", "NEW")
DECIMAL = spot_orders.SCHEMA.field("price").type
TS = spot_orders.SCHEMA.field("time").type
WRITE_THREADS = 2  # two partition writes in flight hide most of the fsync latency
TARGET = Target("<=", 1.5)
MONTH_QUERY = "one-month daily notional by symbol"  # the one query that filters on the partition column
QUERIES = {
    MONTH_QUERY: (
        "SELECT date, symbol, count(*) AS orders, sum(cummulative_quote_qty) AS notional FROM {src} "
        "WHERE date >= DATE '{month}' AND date < DATE '{month}' + INTERVAL 1 MONTH AND executed_qty > 0 "
        "GROUP BY ALL ORDER BY ALL"
    ),
    "full-history aggregate": (
        "SELECT symbol, side, status, count(*) AS orders, sum(executed_qty) AS qty, "
        "sum(cummulative_quote_qty) AS notional FROM {src} GROUP BY ALL ORDER BY ALL"
    ),
    "single-order lookup by id": (
        "SELECT symbol, order_id, status, price, executed_qty, update_time FROM {src} WHERE order_id = {order_id}"
    ),
}


@dataclass(frozen=True)
class Size:
    rows: int
    days: int
    runs: int  # timed warm runs per query and layout (the median is reported)


SIZES = {
    "smoke": Size(rows=20_000, days=5, runs=2),
    "quick": Size(rows=1_000_000, days=730, runs=5),
    "full": Size(rows=5_000_000, days=730, runs=9),
}


@dataclass(frozen=True)
class Timing:
    """Medians of one query: the catalog's view over our lake, the raw day files read directly, one file."""

    query: str
    files_needed: int  # daily files holding rows the query asks about (all of them, unless it filters on date)
    partitions_s: float
    plain_s: float
    consolidated_s: float

    @property
    def ratio(self) -> float:
        return self.partitions_s / self.consolidated_s


def run(ctx: Context) -> ScenarioResult:
    size = SIZES[ctx.mode]
    work = ctx.fresh_dir("p4")
    consolidated = work / "consolidated.parquet"
    t0 = time.perf_counter()
    lookup_id = write_both(work / "data", consolidated, size)
    written_s = time.perf_counter() - t0
    where = lakefs.location(work / "data")  # the local lake, or an S3 prefix the data dir is bound to
    glob = where.uri(where.path(TABLE)) + "/*/*/*.parquet"
    t0 = time.perf_counter()
    catalog = build_catalog(work / "data")
    built_s = time.perf_counter() - t0
    sources = {
        "partitions": "wh.spot_order_versions",
        "plain": f"read_parquet({lit(glob)}, hive_partitioning = true, hive_types = {HIVE_TYPES})",
        "consolidated": f"read_parquet({lit(consolidated.as_posix())})",
    }
    days = lake.list_partitions(work / "data", TABLE, ACCOUNT)
    files = len(days)
    month = (FIRST_DAY + timedelta(days=size.days // 2)).replace(day=1)
    in_month = sum(1 for d in days if (d.year, d.month) == (month.year, month.month))
    timings = [
        _time_query(
            name,
            sql.format(src="{src}", month=month, order_id=lookup_id),
            sources,
            size.runs,
            in_month if name == MONTH_QUERY else files,
            catalog.path,
            where,
        )
        for name, sql in QUERIES.items()
    ]
    result = ScenarioResult(
        "P4",
        f"Query latency ({size.rows:,} orders, {files} daily partitions vs one file; median of {size.runs} warm runs)",
    )
    result.figures = [_figure(t, files) for t in timings]
    result.details = _details(timings, files, consolidated, written_s, built_s, catalog.months_compacted)
    return result


# -- data ------------------------------------------------------------------------------------------------------------
def write_both(data_dir: Path, consolidated: Path, size: Size) -> int:
    """Write every day through the lake and into the consolidated file; returns an order id to look up."""
    rng = np.random.default_rng(SEED)
    schema = spot_orders.SCHEMA.append(pa.field("date", pa.date32()))
    days = [FIRST_DAY + timedelta(days=i) for i in range(size.days)]
    with ThreadPoolExecutor(WRITE_THREADS) as pool, _RowGroupWriter(consolidated, schema) as single:
        pending = []
        first_id = 1
        for i, day in enumerate(days):
            n = size.rows // size.days + (i < size.rows % size.days)
            table = day_orders(rng, day, first_id, n)
            first_id += n
            pending.append(pool.submit(lake.write_partition, data_dir, TABLE, ACCOUNT, day, table))
            ordered = lake.sort_for_lake(TABLE, table)
            single.write(ordered.append_column("date", pa.array([day] * n, pa.date32())))
        for f in pending:
            f.result()
    return size.rows // 2 + 1


def day_orders(rng: np.random.Generator, day: date, first_id: int, n: int) -> pa.Table:
    """``n`` spot orders last updated on ``day``, ids ascending from ``first_id``, in the lake's schema."""
    start_ms = day_start_ms(day)
    update = start_ms + np.sort(rng.integers(0, DAY_MS, n))
    placed = update - rng.integers(0, 3_600_000, n)
    price_cents = rng.integers(1, 10_000_000, n)
    qty_milli = rng.integers(1, 10_000, n)
    status = pa.array(STATUSES).take(pa.array(rng.integers(0, len(STATUSES), n)))
    executed = np.where(
        np.isin(np.asarray(status.to_numpy(zero_copy_only=False)), ["FILLED", "PARTIALLY_FILLED"]), qty_milli, 0
    )
    ids = pa.array(np.arange(first_id, first_id + n, dtype=np.int64))
    columns = {
        "account": _const(ACCOUNT, n),
        "symbol": _pick(rng, SYMBOLS, n, zipf=True),
        "order_id": ids,
        "order_list_id": pa.array(np.full(n, -1, dtype=np.int64)),
        "client_order_id": pc.binary_join_element_wise("web_", pc.cast(ids, pa.string()), ""),
        "price": _decimal(price_cents * 1_000_000),
        "orig_qty": _decimal(qty_milli * 100_000),
        "executed_qty": _decimal(executed * 100_000),
        "cummulative_quote_qty": _decimal(price_cents * executed * 1000),
        "status": status,
        "time_in_force": _pick(rng, ("GTC", "IOC"), n),
        "type": _pick(rng, ("LIMIT", "MARKET"), n),
        "side": _pick(rng, ("BUY", "SELL"), n),
        "stop_price": _decimal(np.zeros(n, dtype=np.int64)),
        "iceberg_qty": _decimal(np.zeros(n, dtype=np.int64)),
        "time": pa.array(placed, TS),
        "update_time": pa.array(update, TS),
        "is_working": pa.array(np.ones(n, dtype=bool)),
        "working_time": pa.array(placed, TS),
        "orig_quote_order_qty": _decimal(np.zeros(n, dtype=np.int64)),
        "self_trade_prevention_mode": _const("EXPIRE_MAKER", n),
        "source": _const("rest_allOrders", n),
        "ingested_at": pa.array(np.full(n, start_ms + DAY_MS, dtype=np.int64), TS),
    }
    arrays = [columns.get(f.name, pa.nulls(n, f.type)) for f in spot_orders.SCHEMA]
    return pa.Table.from_arrays(arrays, schema=spot_orders.SCHEMA)


def _decimal(units: np.ndarray) -> pa.Array:
    """decimal128(38, 8) from non-negative integer units of 1e-8: the low 64-bit word (little-endian), high word 0."""
    words = np.zeros((len(units), 2), dtype="<i8")
    words[:, 0] = units
    return pa.Array.from_buffers(DECIMAL, len(units), [None, pa.py_buffer(words.tobytes())])


def _const(value: str, n: int) -> pa.Array:
    return pa.array([value]).take(pa.array(np.zeros(n, dtype=np.int64)))


def _pick(rng: np.random.Generator, values: tuple[str, ...], n: int, *, zipf: bool = False) -> pa.Array:
    weights = 1.0 / np.arange(1, len(values) + 1) if zipf else np.ones(len(values))
    return pa.array(values).take(pa.array(rng.choice(len(values), n, p=weights / weights.sum())))


class _RowGroupWriter:
    """Streams day tables into one Parquet file in row groups of the lake's size (days are far smaller)."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.writer = pq.ParquetWriter(
            path, schema, compression=lake.COMPRESSION, use_dictionary=lake.dictionary_columns(schema)
        )
        self.buffer: list[pa.Table] = []
        self.buffered = 0

    def __enter__(self) -> _RowGroupWriter:
        return self

    def write(self, table: pa.Table) -> None:
        self.buffer.append(table)
        self.buffered += table.num_rows
        if self.buffered >= lake.ROW_GROUP_SIZE:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        whole = pa.concat_tables(self.buffer)
        keep = len(whole) if final else len(whole) // lake.ROW_GROUP_SIZE * lake.ROW_GROUP_SIZE
        if keep:
            self.writer.write_table(whole.slice(0, keep), row_group_size=lake.ROW_GROUP_SIZE)
        rest = whole.slice(keep)
        self.buffer, self.buffered = ([rest], len(rest)) if len(rest) else ([], 0)

    def __exit__(self, *exc: object) -> None:
        if self.buffer and exc[0] is None:
            self._flush(final=True)
        self.writer.close()


# -- queries ---------------------------------------------------------------------------------------------------------
def _time_query(
    name: str, sql: str, sources: dict[str, str], runs: int, files_needed: int, catalog: Path, where: LakeLocation
) -> Timing:
    """One warm-up per layout, then ``runs`` timed runs alternating the layouts (noise hits both alike)."""
    con = duckdb.connect()
    try:
        where.register(con)
        con.execute(f"ATTACH {lit(catalog.as_posix())} AS wh (READ_ONLY)")
        answers = {k: con.sql(sql.format(src=src)).fetchall() for k, src in sources.items()}  # warm-up
        if len({repr(a) for a in answers.values()}) != 1 or not answers["consolidated"]:
            raise RuntimeError(f"P4 {name}: the layouts answered differently (or not at all)")
        samples: dict[str, list[float]] = {k: [] for k in sources}
        for _ in range(runs):
            for k, src in sources.items():
                samples[k].append(_seconds(lambda s=src: con.sql(sql.format(src=s)).fetchall()))
    finally:
        con.close()
    return Timing(name, files_needed, *(statistics.median(samples[k]) for k in ("partitions", "plain", "consolidated")))


def _seconds(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# -- report ----------------------------------------------------------------------------------------------------------
def _figure(t: Timing, files: int) -> Figure:
    why = "" if TARGET.met(t.ratio) else _why(t, files)
    return Figure(
        "P4",
        f"DuckDB {t.query}: partitions vs one file",
        fmt_s(t.partitions_s),
        fmt_s(t.consolidated_s),
        t.ratio,
        TARGET,
        why=why,
    )


def _why(t: Timing, files: int) -> str:
    return (
        f"the catalog view took {fmt_s(t.partitions_s - t.consolidated_s)} more than one file: it reads the "
        f"compacted closed months plus the open month's day files, and the query touched {t.files_needed} of "
        f"{files} days (the raw day files read directly: ratio {t.plain_s / t.consolidated_s:.2f})"
    )


def _details(
    timings: list[Timing], files: int, consolidated: Path, written_s: float, built_s: float, months: int
) -> list[str]:
    lines = [
        "| query | catalog view (what BI tools read) | raw day files, read directly | one file | ratio | ratio of "
        "the raw day files |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {t.query} | {fmt_s(t.partitions_s)} | {fmt_s(t.plain_s)} | {fmt_s(t.consolidated_s)} | "
        f"{t.ratio:.2f} | {t.plain_s / t.consolidated_s:.2f} |"
        for t in timings
    ]
    meta = pq.ParquetFile(consolidated).metadata
    lines += [
        "",
        f"The consolidated file: {meta.num_row_groups} row groups of up to {lake.ROW_GROUP_SIZE:,} rows, "
        f"{consolidated.stat().st_size / 2**20:,.0f} MB; the lake: {files} files of one row group each. "
        f"Writing both took {written_s:.1f} s; the first catalog build, compacting {months} closed months, took "
        f"{built_s:.1f} s (context only; later builds recompact only months whose days changed). The raw day "
        f"files are read as `{read_parquet_sql('<glob>', union_by_name=False)}`.",
    ]
    return lines

"""The DuckDB catalog: ``$ORDERLAKE_DATA_DIR/warehouse.duckdb``, a file holding only views over the Parquet lake.

:func:`build_catalog` builds into a temporary file and swaps it in atomically, so a reader always opens a complete
catalog (the old one or the new one) and the builder never needs the lock that read-only readers hold. By default the
views read a hard-linked snapshot of the lake taken at build time (a partition written later shows up at the next
build) and closed months from compacted files; every path is absolute. Design: docs/design/catalog.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.storage import lakefs, schemas
from pipeline.storage.atomic import atomic_path
from pipeline.storage.schemas.columns import LEGACY_SOURCES
from pipeline.times import now_ms as wall_now_ms
from pipeline.warehouse import trade_views
from pipeline.warehouse.amounts import DAILY_ACTIVITY_SQL, lake_symbols, orders_sql, symbols_sql, with_assets
from pipeline.warehouse.compaction import compacted_sources, gc_compacted
from pipeline.warehouse.object_snapshots import gc_pins, snapshot_objects
from pipeline.warehouse.reads import (
    Source,
    describe,
    lit,
    objects_differ,
    q,
    read_parquet_sql,
    schemas_differ,
    table_glob,
)
from pipeline.warehouse.snapshots import (
    DEFAULT_SNAPSHOT_GRACE_SECONDS,
    SNAPSHOT_DIR,
    SNAPSHOT_DONE,
    STALE_TEMP_SECONDS,
    gc_snapshots,
    snapshot_id,
    snapshot_lake,
)
from pipeline.warehouse.symbols import KnownAssets, load_known_assets
from pipeline.warehouse.views import MARKET_TABLES, SPECS, VIEWS

CATALOG_FILE = "warehouse.duckdb"
TABLES = schemas.TABLES
STORAGE_COMPATIBILITY = "v1.0.0"
# tables whose `source` names the channel (rest, ws, export): older lakes hold endpoint names the views translate
CHANNEL_TABLES = ("futures_orders", "pm_um_orders", "spot_trades", *trade_views.FUTURES_TABLES)


@dataclass(frozen=True)
class CatalogResult:
    """What :func:`build_catalog` produced: the file, each view with its row count, when."""

    path: Path
    views: dict[str, int]
    built_at: datetime
    files: dict[str, int] = field(default_factory=dict)  # lake files per table at build time
    seconds: float = 0.0
    snapshot: Path | None = None  # the hard-link snapshot the views read (None: live)
    compacted: dict[str, tuple[Path, ...]] = field(default_factory=dict)  # closed-month files the views read
    months_compacted: int = 0  # of those, written by this build (the others reused)
    unknown_assets: tuple[tuple[str, str], ...] = ()  # (market, symbol) in the lake whose assets no state file knows
    asset_problems: tuple[str, ...] = ()  # state files that could not be read


def catalog_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir).resolve() / CATALOG_FILE


def lake_glob(data_dir: str | os.PathLike[str], table: str) -> str:
    """Absolute glob of a table's partition files (``lake/<table>/account=*/date=*/*.parquet``)."""
    return table_glob(Path(data_dir).resolve() / "lake", table)


# -- schemas --------------------------------------------------------------------------------------------------------
def storage_schema(table: str) -> pa.Schema:
    """The table's Arrow schema: the lake writer enforces it, so it is what every file holds."""
    return schemas.schema_for(table)


def schema_columns(con: Any, table: str) -> list[tuple[str, str]]:
    """(name, DuckDB type) of a table from its Arrow schema, plus the hive ``date`` column (always a DATE; the hive
    value wins over a file column of that name)."""
    rel = con.from_arrow(storage_schema(table).empty_table())
    cols = [(n, "DATE" if n == "date" else str(t)) for n, t in zip(rel.columns, rel.types, strict=True)]
    if "date" not in {n for n, _ in cols}:
        cols.append(("date", "DATE"))
    return cols


def empty_select(cols: Iterable[tuple[str, str]]) -> str:
    return "SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {q(n)}" for n, t in cols) + " WHERE false"


def has_files(root: Path, table: str) -> int:
    """Number of partition files of ``table`` under ``root`` (writer temp files never match ``*.parquet``)."""
    base = root / table
    return sum(1 for _ in base.glob("*/*/*.parquet")) if base.is_dir() else 0


def _reads(con: Any, src: Source) -> list[str]:
    """Day files and objects (``s3://`` strings) merge by name only where their schemas differ, so that a query
    opens the footers of the days it reads, not of every day.

    Design: docs/design/scale.md §DuckDB reads the lake through httpfs."""
    reads = []
    if src.compacted:
        reads.append(
            read_parquet_sql(
                [p.as_posix() for p in src.compacted], hive=False, union_by_name=schemas_differ(src.compacted)
            )
        )
    if isinstance(src.days, str):
        reads.append(read_parquet_sql(src.days))
    elif src.days:
        local = [p for p in src.days if isinstance(p, Path)]
        objects = [p for p in src.days if isinstance(p, str)]
        union = bool(local and objects) or schemas_differ(local) or bool(objects and objects_differ(con, objects))
        reads.append(
            read_parquet_sql([p if isinstance(p, str) else p.as_posix() for p in src.days], union_by_name=union)
        )
    return [f"SELECT * FROM {r}" for r in reads]


def source_sql(con: Any, table: str, src: Source) -> str:
    """SELECT over a table's compacted months and day files, typed by the schema even when there are no files.

    Columns in the order of one read over all day files (file columns, date, columns only the schema has), so the
    view does not change shape when a month gets compacted.
    """
    cols = schema_columns(con, table)
    empty = empty_select(cols)
    reads = _reads(con, src)
    if not reads:
        return empty
    union = " UNION ALL BY NAME ".join(reads)
    in_files = [c for c in describe(con, union) if c != "date"]
    order = [*in_files, "date", *(n for n, _ in cols if n not in in_files and n != "date")]
    return f"SELECT {', '.join(q(c) for c in order)} FROM ({union} UNION ALL BY NAME {empty})"


# -- view SQL ---------------------------------------------------------------------------------------------------------
def latest_sql(base: str, cols: dict[str, str], spec: schemas.TableSpec) -> str:
    """Keep the latest version per (account, spec key): greatest ``spec.version``, then latest ingested_at, then
    latest partition."""
    order = [f"{q(c)} DESC NULLS LAST" for c in (spec.version, "ingested_at", "date") if c in cols]
    part = ", ".join(q(k) for k in ("account", *spec.key) if k in cols)
    return (
        f"SELECT * FROM ({base}) QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY {', '.join(order) or '1'}) = 1"
    )


def channel_sql(base: str) -> str:
    """``base`` with the ``source`` values lakes wrote before the channel values shown as their channel, so a lake
    needs no migration (docs/design/futures-rest.md §Source values)."""
    cases = " ".join(f"WHEN {lit(old)} THEN {lit(new)}" for old, new in LEGACY_SOURCES.items())
    return f"SELECT * REPLACE (CASE source {cases} ELSE source END AS source) FROM ({base})"


def open_orders_sql(base: str, cols: dict[str, str], files: str | None) -> str:
    """The latest snapshot per account.

    The latest partition FILE decides (parquet_file_metadata also lists 0-row files): an empty latest snapshot means
    no open orders, which a max(snapshot_time) over rows alone would miss. Within that day the newest snapshot_time
    wins in case one partition holds several snapshots.
    """
    if files is None:  # files: the SQL of the partition files (a glob literal or a list)
        return base
    latest = (
        f"SELECT regexp_extract(file_name, 'account=([^/\\\\]+)', 1) AS account, "
        f"max(CAST(regexp_extract(file_name, 'date=([0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})', 1) AS DATE)) AS date "
        f"FROM parquet_file_metadata({files}) GROUP BY 1"
    )
    sql = f"SELECT s.* FROM ({base}) s SEMI JOIN ({latest}) l ON s.account = l.account AND s.date = l.date"
    if "snapshot_time" in cols:
        sql += " QUALIFY snapshot_time = max(snapshot_time) OVER (PARTITION BY account)"
    return sql


_LAKE_FILES_COLS = [
    ("table_name", "VARCHAR"),
    ("account", "VARCHAR"),
    ("date", "DATE"),
    ("rows", "BIGINT"),
    ("bytes", "BIGINT"),
    ("path", "VARCHAR"),
]


def lake_files_sql(root: Path | str, lake_root: Path | str, file_sets: dict[str, str]) -> str:
    """Partition files with their row counts (``file_sets``: the SQL of each table's files, tables without files
    left out); paths are shown under the lake even when read from a snapshot or from pinned object copies."""
    tables_with_files = list(file_sets)
    pinned = isinstance(root, str) and root != lake_root  # s3:// pins: <root>/<table>/…/date=…/<etag>/part-0.parquet
    root, lake_root = (r if isinstance(r, str) else r.as_posix() for r in (root, lake_root))
    if not tables_with_files:
        return empty_select(_LAKE_FILES_COLS)
    path = f"replace(file_name, {lit(root + '/')}, {lit(lake_root + '/')})" if root != lake_root else "file_name"
    if pinned:
        path = f"regexp_replace({path}, '/[^/]+/([^/]+)$', '/\\1')"
    parts = [
        f"SELECT {lit(t)} AS table_name, "
        f"regexp_extract(file_name, 'account=([^/\\\\]+)', 1) AS account, "
        f"CAST(regexp_extract(file_name, 'date=([0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})', 1) AS DATE) AS date, "
        f"CAST(num_rows AS BIGINT) AS rows, CAST(file_size_bytes AS BIGINT) AS bytes, {path} AS path "
        f"FROM parquet_file_metadata({file_sets[t]})"
        for t in tables_with_files
    ]
    return "\nUNION ALL\n".join(parts)


COVERAGE_SQL = """
SELECT table_name, account, count(*) AS partitions, min(date) AS first_date, max(date) AS last_date,
       CAST(date_diff('day', min(date), max(date)) + 1 - count(DISTINCT date) AS BIGINT) AS missing_days,
       CAST(sum(rows) AS BIGINT) AS rows, count(*) FILTER (WHERE rows = 0) AS empty_partitions
FROM lake_files
GROUP BY ALL
"""


# -- build ------------------------------------------------------------------------------------------------------------
def _view_definitions(
    con: Any,
    root: Path | str,
    lake_root: Path | str,
    file_sets: dict[str, str],
    sources: dict[str, Source],
    known: KnownAssets,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(view name, SELECT) in the registry's order, and the lake's (market, symbol) pairs; ``root`` holds the
    <table>/account=/date= tree of every day file, ``file_sets`` the SQL of each table's day files (if any)."""
    src = {t: source_sql(con, t, sources[t]) for t in TABLES}
    src |= {t: channel_sql(src[t]) for t in CHANNEL_TABLES}
    cols = {t: describe(con, src[t]) for t in TABLES}

    def latest(table: str, base: str | None = None) -> str:
        return latest_sql(base or src[table], cols[table], schemas.spec_for(table))

    def versions(table: str, market: str) -> str:
        return with_assets(src[table], cols[table], market)

    pairs = lake_symbols(con, src)
    open_orders = versions("spot_open_orders", "spot")
    views = [
        ("symbols", symbols_sql(pairs, known)),
        ("spot_order_versions", versions("spot_orders", "spot")),
        ("spot_orders", latest("spot_orders", "SELECT * FROM spot_order_versions")),
        ("spot_order_lists", latest("spot_order_lists")),
        (
            "spot_open_orders",
            open_orders_sql(
                open_orders,
                cols["spot_open_orders"],
                file_sets.get("spot_open_orders"),
            ),
        ),
        ("futures_order_versions", versions("futures_orders", "usdm")),
        ("futures_orders", latest("futures_orders", "SELECT * FROM futures_order_versions")),
        ("pm_um_order_versions", versions("pm_um_orders", "pm_um")),
        ("pm_um_orders", latest("pm_um_orders", "SELECT * FROM pm_um_order_versions")),
        *((t, latest(t)) for t in ("spot_trades", *trade_views.FUTURES_TABLES)),
        (
            "orders",
            orders_sql(
                {m: {**cols[t], "base_asset": "VARCHAR", "quote_asset": "VARCHAR"} for m, t in MARKET_TABLES.items()}
            ),
        ),
        ("daily_activity", DAILY_ACTIVITY_SQL),
        ("lake_files", lake_files_sql(root, lake_root, file_sets)),
        ("coverage", COVERAGE_SQL),
        ("trades", trade_views.trades_sql()),
        ("income", trade_views.income_sql()),
        ("fees_daily", trade_views.FEES_DAILY_SQL),
        ("pnl_daily", trade_views.PNL_DAILY_SQL),
        ("order_trade_mismatches", trade_views.ORDER_TRADE_MISMATCHES_SQL),
    ]
    if [name for name, _ in views] != [v.name for v in VIEWS]:
        raise ValueError(
            "the catalog's views and their registry (pipeline/warehouse/views.py) differ: "
            f"{[name for name, _ in views]} vs {[v.name for v in VIEWS]}; register every view, in build order"
        )
    return views, pairs


def _clean_stale_temps(directory: Path) -> None:
    """Temp catalogs of crashed builds (ours are named .warehouse.duckdb.<uuid>.tmp[.wal])."""
    cutoff = time.time() - STALE_TEMP_SECONDS
    for p in directory.glob(f".{CATALOG_FILE}.*.tmp*"):
        try:
            if p.stat().st_mtime < cutoff:
                p.unlink()
        except OSError:
            pass


# -- build ------------------------------------------------------------------------------------------------------------
def build_catalog(
    data_dir: str | os.PathLike[str],
    *,
    snapshot: bool = True,
    now: datetime | None = None,
    snapshot_grace_seconds: float = DEFAULT_SNAPSHOT_GRACE_SECONDS,
) -> CatalogResult:
    """(Re)build ``<data_dir>/warehouse.duckdb`` atomically; see the module docstring. Never fails on empty tables.

    snapshot=True (default): the views read a hard-link snapshot of the lake taken now (consistent, immune to
    partition rewrites), closed months compacted. snapshot=False: the views read the live lake (see the module
    docstring for the risk). ``now`` (aware; default the clock) decides which months are closed.
    """
    import duckdb

    started = time.monotonic()
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    final = data_dir / CATALOG_FILE
    lake_root: Path | str = data_dir / "lake"
    where = lakefs.location(data_dir)
    _clean_stale_temps(data_dir)
    snap_root = data_dir / SNAPSHOT_DIR / snapshot_id() if snapshot or not where.is_local else None
    written = 0
    if not where.is_local:  # object storage: pinned copies of the listed versions, no links, no compaction
        assert snap_root is not None
        root, objects = snapshot_objects(where, data_dir, snap_root, TABLES)
        files, lake_root = {t: len(v) for t, v in objects.items()}, where.url
        sources = {t: Source(days=tuple(v)) if v else Source() for t, v in objects.items()}
        file_sets = {t: "[" + ", ".join(lit(u) for u in v) + "]" for t, v in objects.items() if v}
    elif snap_root is not None:
        linked = snapshot_lake(data_dir, snap_root, TABLES)
        files, root = {t: len(v) for t, v in linked.items()}, snap_root
        current_month = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m")
        sources, written = compacted_sources(data_dir, snap_root, linked, current_month)
        file_sets = {t: lit(table_glob(snap_root, t)) for t in TABLES if files[t]}
    else:
        files, root = {t: has_files(Path(lake_root), t) for t in TABLES}, lake_root
        sources = {t: Source(days=table_glob(Path(lake_root), t)) if files[t] else Source() for t in TABLES}
        file_sets = {t: lit(table_glob(Path(lake_root), t)) for t in TABLES if files[t]}
    known = load_known_assets(data_dir)
    counts: dict[str, int] = {}
    with atomic_path(final, prefix=f".{CATALOG_FILE}.", suffix=".tmp") as tmp:
        try:
            con = duckdb.connect(str(tmp), config={"storage_compatibility_version": STORAGE_COMPATIBILITY})
            try:
                where.register(con)  # S3: credentials live in this connection only, never in the file
                views, pairs = _view_definitions(con, root, lake_root, file_sets, sources, known)
                for name, select in views:
                    con.execute(f"CREATE OR REPLACE VIEW {q(name)} AS {select}")
                    con.execute(f"COMMENT ON VIEW {q(name)} IS {lit(SPECS[name].description)}")
                    counts[name] = int(con.execute(f"SELECT count(*) FROM {q(name)}").fetchall()[0][0])
                con.execute("CHECKPOINT")
            finally:
                con.close()
        finally:
            tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
        if snap_root is not None:  # compacted_sources created it
            (snap_root / SNAPSHOT_DONE).write_text(str(wall_now_ms()))
    gc_snapshots(data_dir, keep=snap_root, grace_seconds=snapshot_grace_seconds)
    gc_compacted(data_dir, grace_seconds=snapshot_grace_seconds)
    if not where.is_local:
        gc_pins(where, data_dir, grace_seconds=snapshot_grace_seconds)
    return CatalogResult(
        path=final,
        views=counts,
        built_at=datetime.now(UTC),
        files=files,
        seconds=time.monotonic() - started,
        snapshot=snap_root,
        compacted={t: src.compacted for t, src in sources.items() if src.compacted},
        months_compacted=written,
        unknown_assets=tuple(p for p in pairs if p not in known.symbols),
        asset_problems=known.problems,
    )


def list_views(con: Any) -> list[str]:
    """User views of an open catalog connection (for error messages and tests)."""
    rows = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY view_name").fetchall()
    return [r[0] for r in rows]

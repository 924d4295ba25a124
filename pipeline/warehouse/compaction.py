"""Closed months compacted into one Parquet file each, named by a fingerprint of their day files, and removed once no
snapshot lists them (see docs/design/catalog.md)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.storage.atomic import atomic_path
from pipeline.warehouse.reads import Source, compact_sort_key, describe, lit, q, read_parquet_sql, schemas_differ
from pipeline.warehouse.snapshots import DEFAULT_SNAPSHOT_GRACE_SECONDS, SNAPSHOT_DIR, STALE_TEMP_SECONDS

COMPACT_DIR = "compact"  # $ORDERLAKE_DATA_DIR/compact/<table>/account=/month=YYYY-MM/<fingerprint>.parquet
COMPACT_MANIFEST = "compacted.txt"  # in a snapshot: the compacted files its catalog reads (relative to COMPACT_DIR)
COMPACT_FORMAT = 1  # part of every fingerprint: bump it when the compacted files' layout changes
COMPACT_ROW_GROUP = 128 * 1024


def _month(day_file: Path) -> str | None:
    """'YYYY-MM' of a ``.../date=YYYY-MM-DD/part-0.parquet`` path (None if the directory is not a date)."""
    try:
        return date.fromisoformat(day_file.parent.name.split("=", 1)[1]).strftime("%Y-%m")
    except (IndexError, ValueError):
        return None


def month_fingerprint(day_files: Iterable[Path]) -> str:
    """Identity of a month's day files: name, size, mtime and inode of each.

    The lake writer os.replace-s a NEW file for every rewrite, and the previous snapshot still pins the old inode, so
    its number cannot come back: any rewritten, added or removed day changes the fingerprint. (Without hard links
    the snapshot copies get new inodes at every build, so months are then recompacted at every build.)
    """
    digest = hashlib.sha256(f"orderlake compacted month v{COMPACT_FORMAT}".encode())
    for path in sorted(day_files):
        st = path.stat()
        digest.update(f"\n{path.parent.name}/{path.name}\t{st.st_size}\t{st.st_mtime_ns}\t{st.st_ino}".encode())
    return digest.hexdigest()[:32]


def plan_table(
    data_dir: Path, table: str, day_files: list[Path], current_month: str
) -> tuple[dict[Path, list[Path]], list[Path]]:
    """({compacted file: its day files} for months before ``current_month``, the day files of open months)."""
    months: dict[tuple[str, str], list[Path]] = {}
    open_days = []
    for path in sorted(day_files):
        month = _month(path)
        if month is not None and month < current_month:
            months.setdefault((path.parent.parent.name, month), []).append(path)
        else:
            open_days.append(path)
    base = data_dir / COMPACT_DIR / table
    compacted = {
        base / acc / f"month={m}" / f"{month_fingerprint(days)}.parquet": days for (acc, m), days in months.items()
    }
    return compacted, open_days


def compact_month(con: Any, table: str, day_files: Sequence[Path], target: Path) -> None:
    """Write one month's day files as ONE Parquet file at ``target``, atomically and never over an existing one: a
    concurrent build may have compacted the same month, and a live catalog may be reading that file.

    Read exactly as a view reads day files (hive ``account``/``date``), so rows and types are the same.
    """
    src = read_parquet_sql([p.as_posix() for p in day_files], union_by_name=schemas_differ(day_files))
    cols = describe(con, f"SELECT * FROM {src}")
    order = ", ".join(q(c) for c in compact_sort_key(table) if c in cols)
    with atomic_path(target, prefix=f".{target.stem}.", suffix=".tmp", exclusive=True) as tmp:
        con.execute(
            f"COPY (SELECT * FROM {src} ORDER BY {order}) TO {lit(tmp.as_posix())} "
            f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {COMPACT_ROW_GROUP})"
        )


def compacted_sources(
    data_dir: Path, snap_root: Path, day_files: dict[str, list[Path]], current_month: str
) -> tuple[dict[str, Source], int]:
    """Each table's Source over a snapshot, compacting the closed months not compacted yet; (sources, written).

    The snapshot's manifest is written BEFORE any compacted file is created or reused, so a concurrent build's GC
    never deletes a file this catalog is about to read.
    """
    import duckdb

    plans = {t: plan_table(data_dir, t, files, current_month) for t, files in day_files.items()}
    root = data_dir / COMPACT_DIR
    snap_root.mkdir(parents=True, exist_ok=True)
    listed = [target.relative_to(root).as_posix() for compacted, _ in plans.values() for target in compacted]
    (snap_root / COMPACT_MANIFEST).write_text("".join(f"{line}\n" for line in listed))
    missing = [
        (t, target, days)
        for t, (compacted, _) in plans.items()
        for target, days in compacted.items()
        if not target.exists()
    ]
    if missing:
        con = duckdb.connect(config={"temp_directory": str(root / ".spill")})
        try:
            for table, target, days in missing:
                compact_month(con, table, days, target)
        finally:
            con.close()
    sources = {
        t: Source(compacted=tuple(compacted), days=tuple(open_days)) for t, (compacted, open_days) in plans.items()
    }
    return sources, len(missing)


def gc_compacted(
    data_dir: Path, *, grace_seconds: float = DEFAULT_SNAPSHOT_GRACE_SECONDS, now_ms: int | None = None
) -> list[Path]:
    """Delete compacted files that no remaining snapshot lists, once they are older than the grace period.

    Run after :func:`gc_snapshots`: a snapshot goes once its successor has been live for the grace period, so a
    compacted file outlives the last catalog reading it by that much. The age check keeps a file a concurrent build
    has just created or is about to reuse. Temp files of crashed compactions go after STALE_TEMP_SECONDS.
    """
    root = data_dir / COMPACT_DIR
    if not root.is_dir():
        return []
    now = time.time() if now_ms is None else now_ms / 1000
    cutoff, temp_cutoff = now - grace_seconds, now - STALE_TEMP_SECONDS
    listed = set()
    for manifest in (data_dir / SNAPSHOT_DIR).glob(f"*/{COMPACT_MANIFEST}"):
        try:
            listed |= {root / line for line in manifest.read_text().splitlines() if line}
        except OSError:
            continue
    removed = []
    for path in root.glob("*/account=*/month=*/*"):
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        stale = mtime < temp_cutoff if path.name.endswith(".tmp") else path not in listed and mtime < cutoff
        if stale:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed

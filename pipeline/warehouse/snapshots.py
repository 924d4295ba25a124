"""Snapshots of the lake that a catalog's views read, and their removal once no reader can need them: hard links
of a local lake, or a manifest of pinned object copies of a lake on object storage (object_snapshots.py; see
docs/design/catalog.md)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from pipeline.times import now_ms as wall_now_ms

STALE_TEMP_SECONDS = 3600
SNAPSHOT_DIR = "snapshots"  # $ORDERLAKE_DATA_DIR/snapshots/<id>/<table>/account=/date=/part-0.parquet
SNAPSHOT_DONE = ".complete"  # written (with the ms time) just before the catalog that uses it goes live
DEFAULT_SNAPSHOT_GRACE_SECONDS = 3600


def snapshot_id(now_ms: int | None = None) -> str:
    ms = wall_now_ms() if now_ms is None else now_ms
    return f"{ms:013d}-{uuid.uuid4().hex[:8]}"


def snapshot_lake(data_dir: Path, snap_root: Path, tables: Iterable[str]) -> dict[str, list[Path]]:
    """Hard-link every partition file of ``tables`` into ``snap_root/<table>/account=/date=/`` (no data copied);
    the links.

    A hard link pins the inode: when the writer later os.replace-s the lake file, the snapshot keeps the old
    complete file. Linking a path while it is being replaced yields the old or the new inode, never a mix.
    """
    linked: dict[str, list[Path]] = {t: [] for t in tables}
    lake_root = data_dir / "lake"
    for table in linked:
        base = lake_root / table
        if not base.is_dir():
            continue
        for src in base.glob("*/*/*.parquet"):
            dst = snap_root / src.relative_to(lake_root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except FileNotFoundError:  # vanished between listing and linking
                continue
            except OSError:  # no hard links here (e.g. FAT): a copy is still a stable snapshot
                shutil.copy2(src, dst)
            linked[table].append(dst)
    return linked


def _completed_at(snap: Path) -> int | None:
    try:
        return int((snap / SNAPSHOT_DONE).read_text().strip())
    except (OSError, ValueError):
        return None


def gc_snapshots(
    data_dir: Path,
    *,
    keep: Path | None = None,
    grace_seconds: float = DEFAULT_SNAPSHOT_GRACE_SECONDS,
    now_ms: int | None = None,
) -> list[Path]:
    """Delete snapshots no catalog can still be reading.

    A complete snapshot is obsolete once a NEWER complete one exists (the catalog was swapped); it is deleted when
    that successor is older than the grace period, which is how long a reader that opened the previous catalog
    may keep querying it (BI tools reconnect per query/session; raise ORDERLAKE_SNAPSHOT_GRACE_SECONDS for
    long-lived sessions). Incomplete ones (a crashed build) go after the grace period too.
    """
    root = data_dir / SNAPSHOT_DIR
    if not root.is_dir():
        return []
    now = wall_now_ms() if now_ms is None else now_ms
    cutoff = now - int(grace_seconds * 1000)
    snaps = [p for p in root.iterdir() if p.is_dir()]
    done = {p: _completed_at(p) for p in snaps}
    removed = []
    for snap in snaps:
        if snap == keep:
            continue
        mine = done[snap]
        if mine is None:
            try:
                created = int(snap.name.split("-", 1)[0])
            except ValueError:
                continue
            obsolete = created < cutoff
        else:
            obsolete = any(t is not None and mine < t < cutoff for t in done.values())
        if obsolete:
            shutil.rmtree(snap, ignore_errors=True)
            removed.append(snap)
    return removed

"""Catalog snapshots of a lake on object storage: the views read pinned copies of the object versions a build listed.

Object storage has no hard links, and a rewritten partition replaces its object under the same key. So the build
copies each listed object version once, on the server (CopyObject: no byte passes through this host), on condition
that its ETag is still the listed one, to a key that never changes:
``<lake>/_orderlake/catalog-pins/<data dir's id>/<table>/account=…/date=…/<etag>/part-0.parquet``. A later build
reuses the copies of unchanged objects. Pins that no snapshot manifest left in the data dir names are deleted once
older than the snapshot grace period. Design: docs/design/scale.md §The lake on object storage.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipeline.storage.atomic import atomic_write
from pipeline.storage.lakefs import LakeLocation
from pipeline.times import now_ms as wall_now_ms
from pipeline.warehouse.snapshots import DEFAULT_SNAPSHOT_GRACE_SECONDS, SNAPSHOT_DIR

OBJECT_MANIFEST = "objects.json"  # in a snapshot of a lake on object storage: {table: [{key, etag, size, pin}]}
PINS = ("_orderlake", "catalog-pins")  # below the lake root: no table's prefix
SPACE_FILE = "pins.id"  # in $ORDERLAKE_DATA_DIR/snapshots: this data dir's namespace among the lake's pins
COPY_THREADS = 8
ATTEMPTS = 3  # an object rewritten between the listing and its copy is listed again, at most this often


def pin_root(where: LakeLocation, data_dir: Path) -> str:
    """This data dir's pins in the lake (``fs`` path): data dirs that share a lake never delete each other's."""
    id_file = data_dir / SNAPSHOT_DIR / SPACE_FILE
    if not id_file.is_file():
        id_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = id_file.with_name(f".{SPACE_FILE}.{uuid.uuid4().hex}")
        tmp.write_text(uuid.uuid4().hex)
        try:
            os.link(tmp, id_file)  # never replaces: a concurrent first build's id wins, and both use it
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return where.path(*PINS, id_file.read_text().strip())


def _precondition_failed(exc: OSError) -> bool:
    cause = exc.__cause__
    return getattr(cause, "response", {}).get("Error", {}).get("Code") in ("PreconditionFailed", "412")


def _split(fs_path: str) -> tuple[str, str]:
    bucket, _, key = fs_path.partition("/")
    return bucket, key


class _Pinner:
    """Copies object versions to their pins (one listing of the pins that exist, then one CopyObject per new one)."""

    def __init__(self, fs: Any, root: str) -> None:
        self.fs, self.root = fs, root
        self.existing = set(fs.find(root))

    def pin_path(self, where: LakeLocation, key: str, etag: str) -> str:
        name = key.rsplit("/", 1)[1]
        return "/".join((self.root, key[len(where.root) + 1 : -len(name) - 1], etag, name))

    def pin(self, where: LakeLocation, key: str, etag: str) -> tuple[str, str] | None:
        """(etag, pin) of the version copied: the listed one, or a newer one when the object was rewritten since
        the listing; None when it was deleted since."""
        for _ in range(ATTEMPTS):
            pin = self.pin_path(where, key, etag)
            if pin in self.existing:
                return etag, pin
            (bucket, source), (pin_bucket, pin_key) = _split(key), _split(pin)
            try:
                self.fs.call_s3(
                    "copy_object",
                    Bucket=pin_bucket,
                    Key=pin_key,
                    CopySource={"Bucket": bucket, "Key": source},
                    CopySourceIfMatch=f'"{etag}"',
                )
                return etag, pin
            except FileNotFoundError:
                return None
            except OSError as exc:
                if not _precondition_failed(exc):
                    raise
            try:
                etag = _etag(self.fs.info(key))
            except FileNotFoundError:
                return None
        raise OSError(f"{where.uri(key)} was rewritten {ATTEMPTS} times while the catalog pinned it; build it again")


def _etag(info: dict[str, Any]) -> str:
    return str(info.get("ETag", "")).strip('"')


def snapshot_objects(
    where: LakeLocation, data_dir: Path, snap_root: Path, tables: Iterable[str]
) -> tuple[str, dict[str, list[str]]]:
    """List every partition object of ``tables`` once, pin each version, record key, ETag, size and pin in
    ``snap_root``'s manifest; the pins' root and each table's pin URIs: what the catalog's views read."""
    assert where.s3 is not None
    fs = where.s3.fsspec()
    pinner = _Pinner(fs, pin_root(where, data_dir))
    listed: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for table in tables:
        found = fs.find(where.path(table), detail=True)
        listed[table] = sorted(
            (name, info) for name, info in found.items() if name.endswith(".parquet") and name.count("/") >= 3
        )
    jobs = [(table, name, info) for table, entries in listed.items() for name, info in entries]
    with ThreadPoolExecutor(COPY_THREADS) as pool:
        pinned = list(pool.map(lambda job: pinner.pin(where, job[1], _etag(job[2])), jobs))
    manifest: dict[str, list[dict[str, object]]] = {table: [] for table in listed}
    for (table, name, info), done in zip(jobs, pinned, strict=True):
        if done is not None:  # deleted since the listing: not in this snapshot, as with a local lake
            etag, pin = done
            manifest[table].append({"key": name, "etag": etag, "size": int(info.get("size") or 0), "pin": pin})
    snap_root.mkdir(parents=True, exist_ok=True)
    atomic_write(snap_root / OBJECT_MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    return where.uri(pinner.root), {t: [where.uri(str(e["pin"])) for e in entries] for t, entries in manifest.items()}


def gc_pins(
    where: LakeLocation,
    data_dir: Path,
    *,
    grace_seconds: float = DEFAULT_SNAPSHOT_GRACE_SECONDS,
    now_ms: int | None = None,
) -> list[str]:
    """Delete this data dir's pins that no snapshot manifest in the data dir names (gc_snapshots removed the
    snapshots no catalog can still be reading) and that are older than the grace period (a build running
    beside this one writes its manifest after its copies); the pins deleted. An unreadable manifest stops it."""
    assert where.s3 is not None
    referenced: set[str] = set()
    for manifest in (data_dir / SNAPSHOT_DIR).glob(f"*/{OBJECT_MANIFEST}"):
        try:
            tables = json.loads(manifest.read_text())
        except (OSError, ValueError):
            return []
        referenced |= {str(e["pin"]) for entries in tables.values() for e in entries if "pin" in e}
    fs = where.s3.fsspec()
    root = pin_root(where, data_dir)
    cutoff = (wall_now_ms() if now_ms is None else now_ms) - int(grace_seconds * 1000)
    stale = [
        name
        for name, info in fs.find(root, detail=True).items()
        if name not in referenced and info["LastModified"].timestamp() * 1000 < cutoff
    ]
    if stale:
        fs.rm(stale)
    return sorted(stale)

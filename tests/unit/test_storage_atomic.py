import errno
import os
from pathlib import Path

import pytest

from pipeline.storage import atomic


class Crash(Exception):
    pass


def test_atomic_write_replaces_bytes_and_text(tmp_path: Path) -> None:
    target = tmp_path / "new" / "dir" / "state.json"
    atomic.atomic_write(target, "first ✓")
    assert target.read_text(encoding="utf-8") == "first ✓"
    atomic.atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert os.listdir(target.parent) == ["state.json"]


@pytest.mark.parametrize("mode", ["wb", "w"])
def test_a_crash_mid_write_leaves_the_old_file_and_no_temp(tmp_path: Path, mode: str) -> None:
    target = tmp_path / "report.txt"
    target.write_bytes(b"old content")
    with pytest.raises(Crash), atomic.atomic_file(target, mode, encoding=None if "b" in mode else "utf-8") as fh:
        fh.write(b"half of the new" if "b" in mode else "half of the new")
        fh.flush()
        raise Crash
    assert target.read_bytes() == b"old content"
    assert os.listdir(tmp_path) == ["report.txt"]


def test_a_crash_while_a_path_writer_works_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "catalog.db"
    target.write_bytes(b"old")
    with pytest.raises(Crash), atomic.atomic_path(target, prefix=".catalog.", suffix=".tmp") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".catalog.") and tmp.name.endswith(".tmp")
        tmp.write_bytes(b"partial")
        raise Crash
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["catalog.db"]


def test_a_failed_rename_removes_the_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")

    def refuse(src: object, dst: object) -> None:
        raise OSError(errno.EACCES, "read-only (simulated)")

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(OSError, match="simulated"):
        atomic.atomic_write(target, b"new")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["x.bin"]


def test_the_file_and_then_its_directory_are_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: events.append("fsync"))
    monkeypatch.setattr(atomic, "fsync_path", lambda p: events.append(f"fsync {Path(p).name}"))
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b)))
    (tmp_path / "d").mkdir()
    atomic.atomic_write(tmp_path / "d" / "f", b"data")
    assert events == ["fsync", "replace", "fsync d"]


def test_exclusive_never_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "content-addressed.parquet"
    target.write_bytes(b"the first writer's copy")
    with atomic.atomic_path(target, exclusive=True) as tmp:
        tmp.write_bytes(b"an identical copy written concurrently")
    assert target.read_bytes() == b"the first writer's copy"
    assert os.listdir(tmp_path) == [target.name]
    fresh = tmp_path / "fresh.parquet"
    with atomic.atomic_path(fresh, exclusive=True) as tmp:
        tmp.write_bytes(b"new")
    assert fresh.read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == sorted([target.name, fresh.name])


def test_publish_moves_a_file_across_filesystems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    staging, final = tmp_path / "staging", tmp_path / "lake" / "part.bin"
    staging.mkdir()
    source = staging / "staged.bin"
    source.write_bytes(b"payload")
    real_replace = os.replace

    def cross_device(src: object, dst: object) -> None:
        if Path(src).parent != Path(dst).parent:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", cross_device)
    atomic.publish(source, final)
    assert final.read_bytes() == b"payload" and not source.exists() and os.listdir(final.parent) == ["part.bin"]

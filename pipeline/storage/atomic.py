"""Atomic, durable file replacement: readers see the old file or the new one, never a part of one, even after a
crash or a power cut.

The one recipe: a temp file in the target's directory (same filesystem, so the rename is atomic) under a name no
glob of the target's picks up, written, flushed and fsynced, ``os.replace``-d over the target, then the directory
fsynced so the rename itself is on disk. An exception on the way removes the temp file and leaves the target as it
was. Use :func:`atomic_write` for bytes or text in hand, :func:`atomic_file` for a streaming writer and
:func:`atomic_path` for writers that want a path (DuckDB ``COPY``, a database file).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's bytes, or a directory's entries, to disk.

    A directory is synced after a rename into it: that makes the rename itself durable on POSIX (not possible,
    nor needed, on Windows, where directories cannot be opened).
    """
    path = Path(path)
    directory = path.is_dir()
    if directory and os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    """``mkdir -p`` that fsyncs the parent of every directory it creates: a file's fsync and its rename's directory
    fsync do not make the directory itself durable, so a crash could otherwise lose a brand-new directory."""
    if path.is_dir():
        return
    make_dirs(path.parent)
    with contextlib.suppress(FileExistsError):  # a concurrent writer made it; fsyncing its parent again is harmless
        path.mkdir()
    fsync_path(path.parent)


def temp_path(directory: Path, *, prefix: str = TEMP_PREFIX, suffix: str = TEMP_SUFFIX) -> Path:
    """A fresh, unique file name in ``directory`` (nothing is created)."""
    return directory / f"{prefix}{uuid.uuid4().hex}{suffix}"


def publish(
    source: Path, final: Path, *, prefix: str = TEMP_PREFIX, suffix: str = TEMP_SUFFIX, exclusive: bool = False
) -> None:
    """Move a finished, fsynced file over ``final`` atomically and durably; ``source`` is consumed.

    Across filesystems it is first copied to a fsynced temp file beside ``final``. ``exclusive``: never replace an
    existing ``final`` (a concurrent writer's copy of a content-addressed file, which a reader may hold open); the
    source is then dropped.
    """
    make_dirs(final.parent)
    try:
        _place(source, final, exclusive)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        with atomic_file(final, prefix=prefix, suffix=suffix) as dst, open(source, "rb") as src:
            shutil.copyfileobj(src, dst, 1 << 20)
        source.unlink()
        return
    fsync_path(final.parent)


def _place(source: Path, final: Path, exclusive: bool) -> None:
    if not exclusive:
        os.replace(source, final)
        return
    try:
        os.link(source, final)
    except FileExistsError:
        pass
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            raise
        os.replace(source, final)  # no hard links on this filesystem
        return
    source.unlink()


@contextlib.contextmanager
def _temp_beside(final: Path, prefix: str, suffix: str) -> Iterator[Path]:
    """A temp path in ``final``'s directory, removed if the block raises."""
    make_dirs(final.parent)
    tmp = temp_path(final.parent, prefix=prefix, suffix=suffix)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(
    final: str | os.PathLike[str], *, prefix: str = TEMP_PREFIX, suffix: str = TEMP_SUFFIX, exclusive: bool = False
) -> Iterator[Path]:
    """A temp path beside ``final`` for the block to write; on a normal exit it is fsynced and put in place (as
    :func:`publish` does), on an exception removed."""
    final = Path(final)
    with _temp_beside(final, prefix, suffix) as tmp:
        yield tmp
        fsync_path(tmp)
        _place(tmp, final, exclusive)
    fsync_path(final.parent)


@contextlib.contextmanager
def atomic_file(
    final: str | os.PathLike[str],
    mode: str = "wb",
    *,
    encoding: str | None = None,
    prefix: str = TEMP_PREFIX,
    suffix: str = TEMP_SUFFIX,
) -> Iterator[IO[Any]]:
    """``with atomic_file(path) as fh:`` writes a new file that replaces ``path`` when the block ends normally;
    ``mode`` is ``"wb"`` or ``"w"`` (text, with ``encoding``)."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_file writes a whole new file: mode 'wb' or 'w', not {mode!r}")
    final = Path(final)
    with _temp_beside(final, prefix, suffix) as tmp:
        with open(tmp, mode.replace("w", "x"), encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    fsync_path(final.parent)


def atomic_write(final: str | os.PathLike[str], data: bytes | str, *, encoding: str = "utf-8") -> None:
    """Replace ``final`` with ``data`` atomically and durably."""
    with atomic_file(final) as fh:
        fh.write(data.encode(encoding) if isinstance(data, str) else data)

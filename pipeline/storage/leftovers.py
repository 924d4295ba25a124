"""Who owns a scratch file or directory under ``$DATA_DIR/tmp/``, the lock that serialises merges into one table,
and the sweep of what killed processes left behind.

Scratch names carry their owner (:func:`owner_tag`: the pid and the process's start time, so a reused pid is not
mistaken for the owner). :func:`sweep_stale` removes every scratch entry whose owner is gone, at once and without an
age limit, and never touches a live process's files. See docs/design/exports.md §Leftovers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

LOCK_DIR = "locks"
_TAG = re.compile(r"-(?P<pid>\d+)\.(?P<start>\d+|x)-")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (field 22 of /proc/PID/stat); None where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_tag() -> str:
    """``<pid>.<start time>`` of this process, for scratch names: ``days-<table>-<tag>-<uuid>``."""
    pid = os.getpid()
    return f"{pid}.{_start_time(pid) or 'x'}"


def _alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    now = _start_time(pid)
    return start == "x" or now is None or now == start


def owner_alive(name: str) -> bool | None:
    """Whether the process named in a scratch name still runs; None for a name without an owner tag."""
    m = _TAG.search(name)
    if m is None:
        return None
    return _alive(int(m.group("pid")), m.group("start"))


@contextlib.contextmanager
def lake_lock(data_dir: str | os.PathLike[str], table: str, account: str) -> Iterator[None]:
    """One merging writer per table and account across processes: a merge reads a stored day and replaces it, so
    two at once could each miss the other's rows."""
    path = Path(data_dir) / "state" / LOCK_DIR / f"{table}.{account}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def sweep_stale(tmp_dir: Path) -> list[Path]:
    """Remove the scratch files and directories under ``tmp_dir`` whose owner process is gone; returns them."""
    removed: list[Path] = []
    if not tmp_dir.is_dir():
        return removed
    for path in sorted(tmp_dir.iterdir()):
        if owner_alive(path.name) is not False:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed

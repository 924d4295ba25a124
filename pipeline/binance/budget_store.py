"""Where the shared weight budget keeps its state: one small JSON document per budget key, changed under a lock.

:class:`FileStore` (the default) keeps a file per key in a per-user directory, locked with ``fcntl.flock``: every
process on one machine shares it. The directory must be the user's own and closed to others, and files are opened
without following symlinks, so another local user can neither redirect a write nor plant a fake ban.
:func:`open_store` picks :mod:`pipeline.binance.budget_shared`'s PostgreSQL or Redis store for a URL, shared by
every worker on every machine that reaches it. Design: docs/design/budget.md §Where the state lives.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from pipeline.errors import ConfigurationError

log = logging.getLogger(__name__)
_SAFE_RE = re.compile(r"[^A-Za-z0-9_.-]+")


class BudgetStore(Protocol):
    """A lock per key and the key's JSON state; what :class:`~pipeline.binance.budget.WeightBudget` needs."""

    def locked(self, key: str) -> contextlib.AbstractContextManager[dict[str, Any]]:
        """The key's state (``{}`` when new or unreadable), exclusively; changes to it are saved on a normal exit."""
        ...

    def serialized(self, key: str) -> contextlib.AbstractContextManager[None]:
        """A second, independent lock per key, held while one process learns the limits for all."""
        ...

    def describe(self) -> str: ...


def safe_key(key: str) -> str:
    return _SAFE_RE.sub("_", key)


def decode(text: str | bytes | None, where: str) -> dict[str, Any]:
    """A stored state; an unreadable one starts afresh (the server's counts refill it)."""
    if not text or not str(text).strip():
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        raw = None
    if not isinstance(raw, dict):
        log.warning("weight budget state %s was unreadable; starting it afresh", where)
        return {}
    return raw


def encode(state: dict[str, Any]) -> str:
    return json.dumps(state, separators=(",", ":"), sort_keys=True)


def check_private_dir(path: Path) -> Path:
    """``path`` as a directory only this user can change: created with mode 0700 when missing, never a symlink,
    owned by this user, writable by nobody else. Anything else raises ConfigurationError naming the fix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    st = os.lstat(path)
    fix = "point ORDERLAKE_BUDGET_DIR at a directory of your own that only you can write, or unset it"
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise ConfigurationError(f"budget directory {path} is a symlink or not a directory; {fix}")
    if st.st_uid != os.geteuid():
        raise ConfigurationError(f"budget directory {path} belongs to uid {st.st_uid}, not to you; {fix}")
    if st.st_mode & 0o022:
        mode = f"{st.st_mode & 0o7777:o}"
        raise ConfigurationError(f"budget directory {path} is writable by other users (mode {mode}); {fix}")
    return path


class FileStore:
    """State files in one directory, shared by every process of this user on this machine."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = check_private_dir(Path(directory))
        self._lock = threading.Lock()

    def describe(self) -> str:
        return str(self.dir)

    def path(self, key: str, suffix: str = ".json") -> Path:
        return self.dir / f"{safe_key(key)}{suffix}"

    def _open(self, path: Path) -> int:
        """Open (or create, mode 0600) without following a symlink: a planted link fails instead of being written."""
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK):
                raise ConfigurationError(
                    f"budget state {path} is a symlink, which orderlake never follows; remove it (another user may "
                    "have planted it) or point ORDERLAKE_BUDGET_DIR at a directory of your own"
                ) from None
            raise

    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[dict[str, Any]]:
        path = self.path(key)
        with self._lock:
            fd = self._open(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                with os.fdopen(os.dup(fd), "r+", encoding="utf-8") as fh:
                    state = decode(fh.read(), str(path))
                    before = encode(state)
                    yield state
                    after = encode(state)
                    if after != before:
                        fh.seek(0)
                        fh.truncate()
                        fh.write(after)
                        fh.flush()
            finally:
                os.close(fd)  # closing releases the flock

    @contextlib.contextmanager
    def serialized(self, key: str) -> Iterator[None]:
        fd = self._open(self.path(key, ".learn.lock"))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def open_store(url: str | None, directory: str | Path) -> BudgetStore:
    """The store for ``ORDERLAKE_BUDGET_URL`` (``postgresql://…`` or ``redis://…``), else files in ``directory``."""
    if not url:
        return FileStore(directory)
    from pipeline.binance import budget_shared  # their client libraries load only when configured

    return budget_shared.open_shared(url)

"""What the futures REST tail remembers between runs, per account and market (``state/futures_rest.json``): the days
REST has served completely, the orders REST stopped showing before the lake saw their final state, the symbols
discovery settled on, and whether a symbol-less USDⓈ-M ``allOrders`` is served.

The status report and the export planner read it; the lake alone cannot tell a day REST covered completely from a
day it covered in part. Writes are atomic and under a file lock, merged per market, so runs of the two markets
never drop each other's facts. A section is stamped with its account's identity: another identity finds it empty
(:mod:`pipeline.identity`).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from pipeline import identity
from pipeline.storage.atomic import atomic_write, make_dirs

STAMP = "identity"  # a section's key: the identity scope it belongs to (absent: written before identities)


def state_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / "state" / "futures_rest.json"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    make_dirs(path.parent)
    with open(path.with_suffix(".lock"), "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def load(data_dir: str | os.PathLike[str], account: str, market: str) -> dict[str, Any]:
    """The market's section: ``complete_days`` (ISO dates), ``vanished`` ({key: order}), ``symbols``,
    ``symbolless`` (True, False or absent), ``probed`` (symbol -> ms of its probe)."""
    section = _read(state_path(data_dir)).get(account, {}).get(market, {})
    return section if identity.owns(section.get(STAMP), identity.owner(data_dir, account)) else {}


def update(data_dir: str | os.PathLike[str], account: str, market: str, change: Callable[[dict], None]) -> dict:
    """Apply ``change`` to the market's section under the lock and save; returns the new section."""
    path = state_path(data_dir)
    with _locked(path):
        data = _read(path)
        section = data.setdefault(account, {}).setdefault(market, {})
        scope = identity.owner(data_dir, account)
        if not identity.owns(section.get(STAMP), scope):  # another identity's facts: not this account's
            section = data[account][market] = {}
        if scope is not None:
            section[STAMP] = scope
        change(section)
        atomic_write(path, json.dumps(data, indent=1, sort_keys=True))
        return section


def complete_days(section: dict[str, Any]) -> set[date]:
    return {date.fromisoformat(d) for d in section.get("complete_days", [])}


def add_days(section: dict[str, Any], days: set[date]) -> None:
    section["complete_days"] = sorted({*section.get("complete_days", []), *(d.isoformat() for d in days)})

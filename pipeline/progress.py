"""Progress reporting from deep inside a run to whoever is watching (the CLI's progress bar).

Assets run in-process under ``orderlake backfill``, so a module-level listener list is enough; under
``dagster dev`` nobody listens and reports cost nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO


@dataclass(frozen=True)
class Progress:
    stage: str
    done: int
    total: int
    weight: int = 0
    note: str = ""


Listener = Callable[[Progress], None]
_listeners: list[Listener] = []


def report(stage: str, done: int, total: int, *, weight: int = 0, note: str = "") -> None:
    event = Progress(stage, done, total, weight, note)
    for listener in list(_listeners):
        listener(event)


def notice(text: str) -> None:
    """A line the person running the command should read now (e.g. the cost of a probe before it starts)."""
    report("notice", 0, 0, note=text)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


@dataclass
class ProgressBar:
    """A one-line bar on a terminal (a plain line per update elsewhere): done/total, weight, ETA."""

    stream: TextIO = sys.stderr
    width: int = 28
    _started: dict[str, float] = field(default_factory=dict)

    def __call__(self, event: Progress) -> None:
        if event.stage == "notice":
            self.stream.write(("\n" if self.stream.isatty() else "") + event.note + "\n")
            self.stream.flush()
            return
        start = self._started.setdefault(event.stage, time.monotonic())
        total = max(event.total, 1)
        frac = min(event.done / total, 1.0)
        filled = int(frac * self.width)
        elapsed = time.monotonic() - start
        eta = f"{elapsed / frac - elapsed:5.0f}s" if 0 < frac < 1 else "   --"
        line = (
            f"{event.stage:<22} [{'#' * filled}{'.' * (self.width - filled)}] {event.done}/{event.total}"
            f"  weight {event.weight:>7}  ETA {eta}  {event.note}"
        )
        if self.stream.isatty():
            end = "\n" if event.done >= event.total else ""
            self.stream.write("\r" + line[:150].ljust(150) + end)
        elif event.done >= event.total or event.done == 0:
            self.stream.write(line + "\n")
        self.stream.flush()

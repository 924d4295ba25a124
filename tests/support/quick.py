"""A refusal "in under 5 s", measured so that a loaded machine cannot fail it: the CPU time of this process (the CLI
runs in-process, the sandbox in a thread) and the sleeps the main thread asked for (a retry backoff, a poll), never
the wall clock, which two loaded cores stretch without bound."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def within(monkeypatch: pytest.MonkeyPatch, seconds: float = 5.0) -> Iterator[None]:
    """Fail unless the block's work took less than ``seconds`` of CPU and it slept less than a second."""
    slept: list[float] = []
    real = time.sleep

    def sleep(s: float) -> None:
        if threading.current_thread() is threading.main_thread():
            slept.append(s)
        real(s)

    with monkeypatch.context() as patch:
        patch.setattr(time, "sleep", sleep)
        cpu = time.process_time()
        yield
        used = time.process_time() - cpu
    assert used < seconds, f"{used:.1f} s of CPU"
    assert sum(slept) < 1, f"slept {slept}"

"""The sandbox's two clocks: the market clock that order histories are read at, and the wire clock of the API.

The market clock stands still unless a test advances it, so what the sandbox serves never changes under a running
test (no order fills between two requests by accident). The wire clock is real time plus the same advance: it
stamps ``serverTime``, checks signed timestamps and times rate-limit windows, export processing and link expiry,
all of which must tick. Advancing moves both, so a client that syncs to ``serverTime`` sees the new day.
"""

from __future__ import annotations

import threading

from pipeline.times import DAY_MS, now_ms


class SandboxClock:
    def __init__(self, market_ms: int, wire_offset_ms: int = 0) -> None:
        self._market = market_ms
        self._offset = wire_offset_ms
        self._lock = threading.Lock()

    def market(self) -> int:
        """The instant every order history, retention rule and export snapshot is read at."""
        return self._market

    def wire(self) -> int:
        """``serverTime``: real time plus every advance so far."""
        return now_ms() + self._offset

    def advance(self, *, days: float = 0, ms: int = 0) -> int:
        """Move both clocks forward; returns the new market time."""
        step = int(days * DAY_MS) + ms
        if step < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._market += step
            self._offset += step
            return self._market

    def __repr__(self) -> str:
        return f"SandboxClock(market={self._market}, wire_offset_ms={self._offset})"

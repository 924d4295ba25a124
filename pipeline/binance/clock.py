"""Server clock: local time plus a measured offset to Binance's clock, one per server family (spot, futures).

Signed requests need a ``timestamp`` within ``recvWindow`` of the server's time, and weight windows follow the
server's clock (docs/binance-facts.md §Timestamps and recvWindow). ``sync`` keeps the sample with the shortest round
trip and publishes half of it as ``uncertainty_ms``; Portfolio Margin reuses the futures clock. Design:
docs/design/budget.md §Clock synchronisation and the window edges.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

SYNC_SAMPLES = 3  # time calls per sync (weight 1 each)


class ServerClock:
    """``now_ms()`` = local time + offset; ``timestamp()`` syncs first if never synced."""

    def __init__(
        self,
        fetch_server_ms: Callable[[], int] | None,
        *,
        now: Callable[[], float] = time.time,
        name: str = "spot",
        samples: int = SYNC_SAMPLES,
    ) -> None:
        if samples < 1:
            raise ValueError("samples must be >= 1")
        self._fetch = fetch_server_ms
        self._now = now
        self.name = name
        self.samples = samples
        self.offset_ms: int | None = None
        self.uncertainty_ms = 0  # the offset is right to within this many ms (0 until the first sync)
        self.syncs = 0
        self._lock = threading.Lock()

    def local_ms(self) -> int:
        return int(self._now() * 1000)

    def now_ms(self) -> int:
        """Best estimate of the server's time; the local clock until the first sync (never triggers a call)."""
        return self.local_ms() + (self.offset_ms or 0)

    def sync(self) -> int:
        """Measure the offset (server - midpoint of the round trip) on the sample with the shortest round trip."""
        if self._fetch is None:
            raise RuntimeError(f"the {self.name} clock has no time endpoint to sync with")
        with self._lock:
            best_rtt_ms, best_offset = math.inf, 0
            for _ in range(self.samples):
                t0 = self._now()
                server = int(self._fetch())
                t1 = self._now()
                rtt_ms = (t1 - t0) * 1000
                if rtt_ms < best_rtt_ms:
                    best_rtt_ms, best_offset = rtt_ms, server - int((t0 + t1) * 500)
            # +1: the server's stamp is truncated to whole milliseconds
            self.offset_ms, self.uncertainty_ms = best_offset, math.ceil(best_rtt_ms / 2) + 1
            self.syncs += 1
            return self.offset_ms

    def timestamp(self) -> int:
        """``timestamp`` for a signed request."""
        if self.offset_ms is None:
            self.sync()
        return self.now_ms()

    def __repr__(self) -> str:
        return f"ServerClock({self.name!r}, offset_ms={self.offset_ms}, uncertainty_ms={self.uncertainty_ms})"

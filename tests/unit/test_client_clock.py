"""Server clock: the offset comes from the fastest of several samples and says how exact it is."""

from __future__ import annotations

import pytest

from pipeline.binance.clock import SYNC_SAMPLES, ServerClock


class ScriptedTime:
    """Local time that a fake time endpoint advances by each sample's scripted round trip."""

    def __init__(self, samples: list[tuple[float, int]]) -> None:
        self.t = 1_700_000_000.0
        self.samples = list(samples)  # (round trip in s, where the server stamped inside it: ms after t0)

    def now(self) -> float:
        return self.t

    def fetch(self) -> int:
        rtt, stamp_after_ms = self.samples.pop(0)
        server = int(self.t * 1000) + stamp_after_ms + 250  # the server's clock runs 250 ms ahead of ours
        self.t += rtt
        return server


def test_sync_keeps_the_sample_with_the_shortest_round_trip() -> None:
    # a 120 ms round trip stamped at its very start (off by 60 ms from the midpoint), a 4 ms one stamped in
    # the middle, and a 50 ms one stamped at its end
    st = ScriptedTime([(0.120, 0), (0.004, 2), (0.050, 50)])
    clock = ServerClock(st.fetch, now=st.now)
    assert abs(clock.sync() - 250) <= 1  # float seconds -> whole ms
    assert clock.uncertainty_ms == 3  # half of 4 ms, +1 for the server's whole-ms stamp
    assert clock.syncs == 1 and st.samples == [] and SYNC_SAMPLES == 3


def test_single_slow_sample_reports_its_uncertainty() -> None:
    st = ScriptedTime([(0.080, 0)])
    clock = ServerClock(st.fetch, now=st.now, samples=1)
    assert abs(clock.sync() - (250 - 40)) <= 1
    assert clock.uncertainty_ms == 41  # the true offset (250) lies within the reported bound
    assert abs(clock.offset_ms - 250) <= clock.uncertainty_ms


def test_timestamp_syncs_once_and_unsynced_clock_is_local() -> None:
    st = ScriptedTime([(0.002, 1)] * SYNC_SAMPLES)
    clock = ServerClock(st.fetch, now=st.now)
    assert clock.now_ms() == int(st.t * 1000) and clock.uncertainty_ms == 0
    assert abs(clock.timestamp() - (int(st.t * 1000) + 250)) <= 1
    clock.timestamp()
    assert clock.syncs == 1
    with pytest.raises(ValueError):
        ServerClock(st.fetch, samples=0)
    with pytest.raises(RuntimeError, match="no time endpoint"):
        ServerClock(None, name="papi").sync()

"""Weight budget arithmetic with a fake clock (no real sleeping), and its sharing through the state file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.binance import errors
from pipeline.binance.budget import (
    Limit,
    WeightBudget,
    counts_from_rate_limits,
    limit_from_text,
    limits_from_rate_limits,
    used_from_headers,
)


class FakeClock:
    def __init__(self, t_ms: int = 1_700_000_000_000) -> None:
        self.t = t_ms
        self.slept: list[float] = []

    def now_ms(self) -> int:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += round(seconds * 1000)


def make(tmp_path: Path, clock: FakeClock, *, limit: int = 100, interval: int = 1000, **kw) -> WeightBudget:
    b = WeightBudget("spot", "api.example:443", tmp_path, now_ms=clock.now_ms, sleep=clock.sleep, guard_ms=10, **kw)
    b.set_limits([Limit(interval, limit)], "exchangeInfo")
    return b


def window_used(b: WeightBudget, interval: int, window: int) -> int:
    return b.snapshot()["windows"].get(str(interval), {}).get(str(window), 0)


def test_fills_to_fraction_then_sleeps_to_next_window_plus_guard(tmp_path: Path) -> None:
    clock = FakeClock(1_700_000_000_000)  # a window boundary (multiple of 1000)
    b = make(tmp_path, clock)  # cap = 0.9 * 100 = 90
    for _ in range(4):
        b.reserve(20)
    assert clock.slept == [] and window_used(b, 1000, clock.t // 1000) == 80
    b.reserve(20)  # 100 > 90: wait for the next window (+10 ms guard)
    assert clock.slept == [pytest.approx(1.010)]
    assert clock.t == 1_700_000_001_010
    assert window_used(b, 1000, clock.t // 1000) == 20
    b.reserve(70)  # 90 fits exactly
    assert len(clock.slept) == 1
    assert b.spent == 170


def test_heavy_request_goes_into_an_empty_window(tmp_path: Path) -> None:
    clock = FakeClock()
    b = make(tmp_path, clock, limit=2400, interval=60_000)
    b.reserve(1000)
    b.reserve(1000)  # 2000 <= 2160
    b.reserve(1000)  # would be 3000: next minute
    assert len(clock.slept) == 1 and clock.t % 60_000 == 10


def test_reservation_near_the_end_is_counted_in_both_windows(tmp_path: Path) -> None:
    clock = FakeClock(1_700_000_000_995)  # 5 ms before the boundary, guard is 10 ms
    b = make(tmp_path, clock)
    b.reserve(30)
    w = clock.t // 1000
    assert window_used(b, 1000, w) == 30 and window_used(b, 1000, w + 1) == 30


def test_settle_takes_the_max_of_local_and_header_only_when_the_window_is_certain(tmp_path: Path) -> None:
    clock = FakeClock(1_700_000_000_100)
    b = make(tmp_path, clock)
    r = b.reserve(10)
    clock.t += 50
    b.settle(r, {1000: 70})  # other users of this IP: the server counted 70
    assert window_used(b, 1000, clock.t // 1000) == 70
    b.settle(r, {1000: 5})  # lower than ours: keep ours
    assert window_used(b, 1000, clock.t // 1000) == 70
    clock.t = 1_700_000_000_990
    r2 = b.reserve(5)
    clock.t = 1_700_000_001_020  # answered in the next window: which window the count belongs to is unknown
    b.settle(r2, {1000: 99})
    assert window_used(b, 1000, clock.t // 1000) == 5  # only the carried reservation
    b.reserve(80)  # 85 <= 90 still fits: the ambiguous 99 was not applied
    assert clock.slept == []


def test_two_processes_share_one_state_file(tmp_path: Path) -> None:
    clock = FakeClock(1_700_000_000_000)
    a, b = make(tmp_path, clock), make(tmp_path, clock)
    a.reserve(50)
    b.reserve(40)  # 90: fits
    assert clock.slept == []
    a.reserve(1)  # 91 > 90 although `a` itself used only 50
    assert len(clock.slept) == 1
    assert (a.spent, b.spent) == (51, 40)


def test_429_blocks_every_user_of_the_host(tmp_path: Path) -> None:
    clock = FakeClock(1_700_000_000_000)
    a, b = make(tmp_path, clock), make(tmp_path, clock)
    a.block(clock.t + 3000, "429", "Too much request weight used")
    b.reserve(1)
    assert clock.t >= 1_700_000_003_000 and sum(clock.slept) == pytest.approx(3.001)


def test_418_raises_with_the_end_of_the_ban_unless_short_enough(tmp_path: Path) -> None:
    clock = FakeClock(1_700_000_000_000)
    b = make(tmp_path, clock)
    until = clock.t + 2 * 3600 * 1000
    b.block(until, "418", f"Way too much request weight used; IP banned until {until}.")
    with pytest.raises(errors.IpBanned) as info:
        b.reserve(1, "/api/v3/allOrders")
    assert info.value.until_ms == until and clock.slept == []
    assert "2023-11-15 00:13:20 UTC" in str(info.value) and "stopped" in str(info.value)
    patient = make(tmp_path, clock, max_ban_wait=3 * 3600)
    patient.reserve(1)
    assert clock.t > until


def test_limit_sources(tmp_path: Path) -> None:
    info = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "SECOND", "intervalNum": 10, "limit": 1000},
    ]
    assert limits_from_rate_limits(info) == [Limit(60_000, 6000), Limit(10_000, 1000)]
    assert counts_from_rate_limits([{**info[0], "count": 42}]) == {60_000: 42}
    assert used_from_headers(
        {
            "X-MBX-USED-WEIGHT-1M": "120",
            "x-mbx-used-weight-1s": "7",
            "X-MBX-USED-WEIGHT": "3",
            "X-MBX-ORDER-COUNT-10S": "1",
        }
    ) == {60_000: 120, 1000: 7}
    assert limit_from_text("Too much request weight used; current limit is 2400 request weight per 1 MINUTE.") == Limit(
        60_000, 2400
    )
    clock = FakeClock()
    b = WeightBudget("papi", "papi.example", tmp_path, now_ms=clock.now_ms, sleep=clock.sleep)
    assert b.snapshot()["limits"] == [(60_000, 6000)]  # group default
    r = b.reserve(1)
    b.settle(r, {1000: 1})  # the (time-scaled) server says its window is 1 s
    assert b.snapshot()["limits"] == [(1000, 6000)]
    b.learn_from_text("current limit is 500 request weight per 1 SECOND")
    assert b.snapshot()["limits"] == [(1000, 500)]


def test_limits_are_fetched_once_per_machine(tmp_path: Path) -> None:
    clock = FakeClock()
    calls = []

    def fetch():
        calls.append(1)
        return [Limit(1000, 600)]

    for _ in range(3):
        WeightBudget("spot", "h", tmp_path, now_ms=clock.now_ms, sleep=clock.sleep).ensure_limits(fetch)
    assert len(calls) == 1
    clock.t += 25 * 3600 * 1000  # cache expired
    WeightBudget("spot", "h", tmp_path, now_ms=clock.now_ms, sleep=clock.sleep).ensure_limits(fetch)
    assert len(calls) == 2


def test_corrupt_state_file_is_restarted(tmp_path: Path) -> None:
    clock = FakeClock()
    b = make(tmp_path, clock)
    b.path.write_text("{not json")
    b.reserve(5)
    assert b.snapshot()["windows"]


def test_clock_error_widens_the_guard(tmp_path: Path) -> None:
    """Our window boundaries are only as good as the clock offset: a 30 ms error needs 30 ms more margin."""
    clock = FakeClock(1_700_000_000_000)
    b = make(tmp_path, clock, clock_error_ms=lambda: 30)  # guard 10 + 30
    b.reserve(90)
    b.reserve(10)  # does not fit: wake up 40 ms after the boundary, not 10
    assert clock.slept == [pytest.approx(1.040)]
    clock.t = 1_700_000_001_965  # 35 ms before the next boundary: inside the widened guard
    b.reserve(5)
    assert window_used(b, 1000, 1_700_000_002) == 5  # counted in the next window as well
    exact = make(tmp_path / "exact", FakeClock(1_700_000_000_965))  # no clock error: 35 ms is far enough
    exact.reserve(5)
    assert window_used(exact, 1000, 1_700_000_001) == 0


def test_settle_margin_includes_the_clock_error(tmp_path: Path) -> None:
    clock = FakeClock(1_700_000_000_020)  # 20 ms into a window
    b = make(tmp_path, clock, clock_error_ms=lambda: 30)
    r = b.reserve(10)
    clock.t += 5
    b.settle(r, {1000: 80})  # sent 20 ms after the boundary, but the clock may be 30 ms fast: ambiguous
    assert window_used(b, 1000, clock.t // 1000) == 10
    clock.t = 1_700_000_000_500
    r = b.reserve(10)
    b.settle(r, {1000: 80})  # mid-window: certain
    assert window_used(b, 1000, clock.t // 1000) == 80


def test_carried_reservation_is_released_once_it_surely_landed_in_its_window(tmp_path: Path) -> None:
    """A burst that starts just before a boundary must not cost the next window twice (startup utilisation)."""
    clock = FakeClock(1_700_000_000_990)  # 10 ms before the boundary: carried into the next window too
    b = make(tmp_path, clock)
    early = b.reserve(20)
    late = b.reserve(30)
    assert early.carried == late.carried == (1000,) and window_used(b, 1000, 1_700_000_001) == 50
    clock.t = 1_700_000_000_994  # answered 6 ms before the boundary (> settle margin of 5 ms): landed there
    b.settle(early, {})
    assert window_used(b, 1000, 1_700_000_001) == 30
    clock.t = 1_700_000_000_997  # too close to the boundary to know: keep counting it in both windows
    b.settle(late, {1000: 50})
    assert window_used(b, 1000, 1_700_000_001) == 30
    assert window_used(b, 1000, 1_700_000_000) == 50

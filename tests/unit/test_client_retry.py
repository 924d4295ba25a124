"""The retry loop decides by the error's type (TransientError), never by inspecting codes or statuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pipeline.binance import errors
from pipeline.binance.transport import RetryPolicy, call_with_retries
from pipeline.errors import TransientError
from pipeline.times import fmt_ms

POLICY = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=8.0, jitter=0.0, max_rate_limit_retries=2)


class FakeClock:
    name, offset_ms = "spot", 0

    def __init__(self) -> None:
        self.syncs = 0

    def now_ms(self) -> int:
        return 1_000_000

    def sync(self) -> None:
        self.syncs += 1


class Flaky(TransientError):
    """A transient error the loop has never heard of: no code, no status, not a Binance error."""


def _run(failures: list[BaseException], *, idempotent: bool = True, policy: RetryPolicy = POLICY) -> tuple:
    calls, slept, clock = [], [], FakeClock()

    def send() -> Any:
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return "ok"

    def run() -> Any:
        return call_with_retries(
            send, name="/x", clock=clock, retry=policy, sleep=slept.append, rand=lambda: 0.0, idempotent=idempotent
        )

    return run, calls, slept, clock


def _outcome(run: Callable[[], Any]) -> Any:
    try:
        return run()
    except BaseException as exc:  # the test looks at what came out
        return exc


def test_any_transient_error_is_retried_with_backoff() -> None:
    run, calls, slept, _ = _run([Flaky("a"), errors.ServerError(code=-1001, http_status=500, endpoint="/x")])
    assert run() == "ok" and len(calls) == 3 and slept == [0.5, 1.0]


def test_a_permanent_error_is_not_retried_whatever_its_code() -> None:
    # -1000 is a "server busy" code and 503 a busy status, but the type says permanent: the type decides
    exc = errors.BinanceAPIError(code=-1000, http_status=503, endpoint="/x")
    run, calls, slept, _ = _run([exc])
    assert _outcome(run) is exc and len(calls) == 1 and slept == []


def test_transient_errors_stop_after_max_attempts() -> None:
    fails = [Flaky(str(i)) for i in range(10)]
    run, calls, _, _ = _run(fails)
    assert _outcome(run) is fails[3] and len(calls) == POLICY.max_attempts


def test_a_non_idempotent_call_is_never_retried() -> None:
    for exc in (Flaky("x"), errors.TransportError(endpoint="/x"), errors.RateLimited(retry_after=1.0, endpoint="/x")):
        run, calls, _, _ = _run([exc], idempotent=False)
        assert _outcome(run) is exc and len(calls) == 1


def test_rate_limits_are_retried_a_bounded_number_of_times_without_extra_sleep() -> None:
    fails = [errors.RateLimited(retry_after=1.0, http_status=429, endpoint="/x") for _ in range(5)]
    run, calls, slept, _ = _run(fails)
    assert _outcome(run) is fails[2] and len(calls) == 3 and slept == []  # the shared budget does the waiting


def test_a_ban_is_a_wait_never_a_retry() -> None:
    until = FakeClock().now_ms() + 120_000
    ban = errors.IpBanned(until_ms=until, http_status=418, endpoint="/x")
    run, calls, _, _ = _run([ban])
    assert _outcome(run) is ban and len(calls) == 1 and not isinstance(ban, TransientError)
    assert "BANNED" in str(ban) and fmt_ms(until) in str(ban)  # the message says until when
    patient = RetryPolicy(max_ban_wait=300)
    run, calls, _, _ = _run([errors.IpBanned(until_ms=until, http_status=418, endpoint="/x")], policy=patient)
    assert run() == "ok" and len(calls) == 2  # a short ban is waited out (the budget blocks until it ends)


def test_a_rejected_timestamp_resyncs_the_clock_once() -> None:
    stale = [errors.TimestampRejected(code=-1021, http_status=400, endpoint="/x", msg="late") for _ in range(3)]
    run, calls, _, clock = _run(stale)
    with pytest.raises(errors.TimestampRejected, match="re-synced"):
        run()
    assert len(calls) == 2 and clock.syncs == 1

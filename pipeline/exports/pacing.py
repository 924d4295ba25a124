"""Pacing rules for create calls and link polls. Pure functions; every duration is multiplied by ``time_scale``.

``time_scale`` is a multiplier on durations: 1.0 in production, e.g. 1/60 against a sandbox running 60x faster,
or 0.001 in unit tests. Nothing here sleeps: callers compare against ``next_poll_at`` / ``not_before`` and return
"not yet" (a Dagster sensor tick must stay short).
"""

from __future__ import annotations

# Heavy create calls (weight 1000 on /fapi, 1500 on /papi) against a 2400/min futures budget: at most one per
# 31 s per limiter group (docs/binance-facts.md §Export create). The client's weight budget would also hold a call back,
# but it would do so by sleeping; the chain refuses early instead so a sensor tick never blocks.
CREATE_SPACING_S = 31.0
# After a create call Binance rejected (e.g. -2015 permissions), wait before trying again: each try costs 1000+
# weight and the cause is usually configuration, so hammering it every sensor tick helps nobody.
CREATE_FAILURE_COOLDOWN_S = 15 * 60.0

# Link polls (weight 10). avgCostTimestampOfLast30d is documented as the average generation time over the
# last 30 days; its unit is UNCONFIRMED (the example 7241837 reads as ms ~= 2 h). It is an average over ALL
# users, while a small account's file is often ready much sooner, so the first poll comes at half the average,
# bounded to [MIN_FIRST_POLL_S, MAX_FIRST_POLL_S]. The clamps also keep us sane if the unit turns out to be
# seconds (7241837 s would otherwise mean "first poll in 42 days").
MIN_FIRST_POLL_S = 15.0
MAX_FIRST_POLL_S = 10 * 60.0
DEFAULT_FIRST_POLL_S = 60.0  # avg missing, zero or negative
# Then exponential backoff (x2 per "still processing"), capped: a file can take hours, but once it is ready the
# link lives 24 h (older doc copies) to 7 days, so 30 min of extra latency at most is harmless.
BACKOFF_FACTOR = 2.0
MAX_POLL_INTERVAL_S = 30 * 60.0
# Transient poll failures (timeouts, 5xx, 429) are retried on the same backoff, starting here.
POLL_ERROR_RETRY_S = 60.0
# A poll "claims" an entry for this long so two processes (sensor + CLI) don't poll the same id at once.
POLL_LEASE_S = 60.0
# An entry stuck in "attempted" longer than this (the process died during the create call) becomes "unknown".
# Not scaled: it must exceed the client's real HTTP timeout whatever the time scale.
STALE_ATTEMPT_S = 5 * 60.0


def first_poll_delay_s(avg_cost_ms: int | None, time_scale: float = 1.0) -> float:
    """Delay before the first poll of a fresh download id."""
    if not avg_cost_ms or avg_cost_ms <= 0:
        base = DEFAULT_FIRST_POLL_S
    else:
        base = min(max(avg_cost_ms / 1000.0 / 2.0, MIN_FIRST_POLL_S), MAX_FIRST_POLL_S)
    return base * time_scale


def next_poll_delay_s(avg_cost_ms: int | None, polls_done: int, time_scale: float = 1.0) -> float:
    """Delay after the ``polls_done``-th poll answered "processing" (polls_done >= 1): first * 2^n, capped."""
    first = first_poll_delay_s(avg_cost_ms, 1.0)
    delay = min(first * BACKOFF_FACTOR ** max(polls_done, 0), MAX_POLL_INTERVAL_S)
    return delay * time_scale


def poll_error_delay_s(failures: int, time_scale: float = 1.0) -> float:
    """Delay after ``failures`` consecutive failed poll calls (transport errors, 5xx, 429)."""
    return min(POLL_ERROR_RETRY_S * BACKOFF_FACTOR ** max(failures - 1, 0), MAX_POLL_INTERVAL_S) * time_scale

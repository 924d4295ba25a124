"""GOAL of the shared weight budget: 4 processes hammering the (time-scaled) sandbox get 0 x 429 while together
using >= 85 % of the server's weight limit in the busy windows: no window over the limit, and the median window at
>= 85 %.

The sandbox (pipeline.sandbox) runs in this process with --time-scale 30: a 1-minute window becomes 2 s
(`X-MBX-USED-WEIGHT-2S`), spot limit 1200 per window. The server-side weight per window is recorded by wrapping the
sandbox limiter's `charge` (the ground truth the 429s come from).

Why 2-s windows and not 1-s ones (time scale 60): the margins the budget keeps at window boundaries (network
latency, clock-offset error, one request of granularity) are absolute milliseconds and weight units, so the shorter
the window, the larger their share. At 1 s, a burst that starts just before a boundary under CPU load stays counted
in both windows (its answers come back too late to prove where it landed) and the first window fell to 0.82-0.85
utilisation in 1-3 of 15 runs with two busy-loop processes on 2 cores; at 2 s every run under the same load stayed
at >= 0.89. The weight rate (600 per second), and so the request rate, is the same as at 1 s.

Why the median of five windows: a window in which the scheduler starves the four workers (a loaded CI machine), or
the first one after the synchronised start (whose burst can straddle a boundary and stay counted in both windows
until its answers settle it), falls short for reasons outside the budget; one such window gave 0.70 next to two at
0.90 on a loaded CI run. A budget that is too conservative is short in every window, so the median still catches it.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

import pipeline.sandbox.testing as testing
from pipeline.binance import BinanceClient, errors
from pipeline.settings import Settings

LIMIT = 1200
TIME_SCALE = 30.0
WINDOW_MS = 2000  # 60 s / TIME_SCALE
WORKERS = 4
HAMMER_S = 6 * WINDOW_MS / 1000  # 5 whole windows inside, wherever in a window it starts


def _worker(env: dict[str, str], budget_dir: str, symbol: str, barrier, stop_at_box, out) -> None:
    """One 'process on the machine': warm up (limits, clock), wait for the others, then call as fast as allowed."""
    client = BinanceClient.from_settings(Settings.from_env(env), budget_dir=budget_dir)
    client.spot.all_orders(symbol, limit=1)  # learns limits (one process pays exchangeInfo) and syncs the clock
    barrier.wait()
    while stop_at_box.value == 0.0:  # the parent sets the horizon right after the barrier
        time.sleep(0.001)
    stop_at = stop_at_box.value
    calls, failures = 0, []
    while time.time() < stop_at:
        try:
            if calls % 5 == 4:
                client.spot.open_orders(symbol)  # weight 6: mixed weights
            else:
                client.spot.all_orders(symbol, limit=1)  # weight 20
            calls += 1
        except errors.BinanceError as exc:  # kept for the assertion message: which error, and why
            failures.append(f"{type(exc).__name__}: {exc}"[:300])
    out.put((calls, failures, client.weight_used()["spot"], client.budgets["spot"].waited_s))
    client.close()


@pytest.mark.slow
@pytest.mark.parametrize("store", ["files", "postgres", "redis"])
def test_four_processes_share_the_budget_without_429(
    store: str, tmp_path: Path, capsys, request: pytest.FixtureRequest
) -> None:
    """With a PostgreSQL or Redis store (ORDERLAKE_BUDGET_URL) each worker gets a budget dir of its own, as on
    four machines behind one egress IP: only the shared store can keep them under the limit."""
    shared = {"files": None, "postgres": "postgres_url", "redis": "redis_url"}[store]
    budget_url = request.getfixturevalue(shared) if shared else None
    started = time.monotonic()
    with testing.start_sandbox(
        time_scale=TIME_SCALE,
        spot_weight_limit=LIMIT,
        listed_symbols=20,
        active_symbols=3,
        history_days=3,
        busy_day_orders=50,
    ) as sx:
        charged: dict[int, int] = defaultdict(int)
        lock = threading.Lock()
        limiter = sx.exchange.limiter
        original = limiter.charge

        def recording(ip: str, group: str, weight: int, now_ms: int) -> int:
            if group == "spot":
                with lock:
                    charged[now_ms // WINDOW_MS] += weight
            return original(ip, group, weight, now_ms)

        limiter.charge = recording
        assert sx.stats()["rate_limit_interval"]["header"] == "X-MBX-USED-WEIGHT-2S"
        symbol = sx.truth()["spot_orders"][0]["symbol"]
        env = testing.sandbox_env(sx, tmp_path) | ({"ORDERLAKE_BUDGET_URL": budget_url} if budget_url else {})
        ctx = mp.get_context("spawn")
        barrier = ctx.Barrier(WORKERS + 1)
        stop_at = ctx.Value("d", 0.0)
        out = ctx.Queue()
        procs = [
            ctx.Process(
                target=_worker,
                args=(env, str(tmp_path / (f"budget-{i}" if budget_url else "budget")), symbol, barrier, stop_at, out),
            )
            for i in range(WORKERS)
        ]
        for p in procs:
            p.start()
        barrier.wait(timeout=60)  # every worker has warmed up
        t0 = time.time()
        stop_at.value = t0 + HAMMER_S
        results = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(10)
        stats = sx.stats()
    # whole windows fully inside the hammering
    first, last = int(t0 * 1000) // WINDOW_MS + 1, int((t0 + HAMMER_S) * 1000) // WINDOW_MS - 1
    busy = [charged.get(w, 0) for w in range(first, last + 1)]
    utilisation = statistics.median(busy) / LIMIT
    calls = sum(r[0] for r in results)
    report = (
        f"\nBUDGET 4 processes ({store}): {calls} calls, 429s={stats['http_429']}, 418s={stats['http_418']}, "
        f"busy windows {busy} of limit {LIMIT} -> median utilisation {utilisation:.1%} (cap at fraction 0.9 = "
        f"{utilisation / 0.9:.1%} of the allowed budget); client weight {sum(r[2] for r in results)} vs "
        f"server {stats['weight']['spot']}; {time.monotonic() - started:.1f}s"
    )
    with capsys.disabled():
        print(report)
    assert all(r[1] == [] for r in results), [r[1] for r in results]
    assert stats["http_429"] == 0 and stats["http_418"] == 0
    assert len(busy) == 5 and max(busy) <= LIMIT
    assert utilisation >= 0.85, report
    assert sum(r[2] for r in results) <= stats["weight"]["spot"]  # client counts are consistent with the server

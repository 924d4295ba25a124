"""GOAL of the shared weight budget: 4 processes hammering the (time-scaled) sandbox get 0 x 429 while together
using >= 85 % of the server's weight limit in the busy windows.

The sandbox (pipeline.sandbox) runs in this process with --time-scale 60: a 1-minute window becomes 1 s
(`X-MBX-USED-WEIGHT-1S`), spot limit 600 per window. The server-side weight per window is recorded by wrapping the
sandbox limiter's `charge` (the ground truth the 429s come from).
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from collections import defaultdict
from pathlib import Path

import pipeline.sandbox.testing as testing
from pipeline.binance import BinanceClient, errors
from pipeline.config import Settings

LIMIT = 600
WORKERS = 4
HAMMER_S = 4.0


def _worker(env: dict[str, str], budget_dir: str, symbol: str, barrier, stop_at_box, out) -> None:
    """One 'process on the machine': warm up (limits, clock), wait for the others, then call as fast as allowed."""
    client = BinanceClient.from_settings(Settings.from_env(env), budget_dir=budget_dir)
    client.spot.all_orders(symbol, limit=1)  # learns limits (one process pays exchangeInfo) and syncs the clock
    barrier.wait()
    while stop_at_box.value == 0.0:  # the parent sets the horizon right after the barrier
        time.sleep(0.001)
    stop_at = stop_at_box.value
    calls = failures = 0
    while time.time() < stop_at:
        try:
            if calls % 5 == 4:
                client.spot.open_orders(symbol)  # weight 6: mixed weights
            else:
                client.spot.all_orders(symbol, limit=1)  # weight 20
            calls += 1
        except errors.BinanceError:
            failures += 1
    out.put((calls, failures, client.weight_used()["spot"], client.budgets["spot"].waited_s))
    client.close()


def test_four_processes_share_the_budget_without_429(tmp_path: Path, capsys) -> None:
    started = time.monotonic()
    with testing.start_sandbox(time_scale=60.0, spot_weight_limit=LIMIT, listed_symbols=20, active_symbols=3,
                               history_days=3, busy_day_orders=50) as sx:
        charged: dict[int, int] = defaultdict(int)
        lock = threading.Lock()
        limiter = sx.exchange.limiter
        original = limiter.charge

        def recording(ip: str, group: str, weight: int, now_ms: int) -> int:
            if group == "spot":
                with lock:
                    charged[now_ms // 1000] += weight
            return original(ip, group, weight, now_ms)

        limiter.charge = recording
        assert sx.stats()["rate_limit_interval"]["header"] == "X-MBX-USED-WEIGHT-1S"
        symbol = sx.truth()["spot_orders"][0]["symbol"]
        env = testing.sandbox_env(sx, tmp_path)
        ctx = mp.get_context("spawn")
        barrier = ctx.Barrier(WORKERS + 1)
        stop_at = ctx.Value("d", 0.0)
        out = ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(env, str(tmp_path / "budget"), symbol, barrier, stop_at, out))
                 for _ in range(WORKERS)]
        for p in procs:
            p.start()
        barrier.wait(timeout=60)  # every worker has warmed up
        t0 = time.time()
        stop_at.value = t0 + HAMMER_S
        results = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(10)
        stats = sx.stats()
    first, last = int(t0) + 1, int(t0 + HAMMER_S) - 1  # whole windows fully inside the hammering
    busy = [charged.get(w, 0) for w in range(first, last + 1)]
    utilisation = sum(busy) / (len(busy) * LIMIT)
    calls = sum(r[0] for r in results)
    report = (f"\nBUDGET 4 processes: {calls} calls, 429s={stats['http_429']}, 418s={stats['http_418']}, "
              f"busy windows {busy} of limit {LIMIT} -> utilisation {utilisation:.1%} (cap at fraction 0.9 = "
              f"{utilisation / 0.9:.1%} of the allowed budget); client weight {sum(r[2] for r in results)} vs "
              f"server {stats['weight']['spot']}; {time.monotonic() - started:.1f}s")
    with capsys.disabled():
        print(report)
    assert all(r[1] == 0 for r in results), results
    assert stats["http_429"] == 0 and stats["http_418"] == 0
    assert len(busy) >= 2 and max(busy) <= LIMIT
    assert utilisation >= 0.85, report
    assert sum(r[2] for r in results) <= stats["weight"]["spot"]  # client counts are consistent with the server

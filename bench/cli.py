"""``python -m bench [--quick | --smoke] [--only P1,P3] [--out FILE] [--work-dir DIR]``.

Runs the scenarios one after the other (never concurrently: on 2 cores they would measure each other), prints the
results table and writes it to ``bench/results.md`` (smoke runs write under the work dir instead, so a test run can
never overwrite the committed results).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from bench import (
    p1_spot_cost,
    p2_rate_limit,
    p3_exports,
    p4_query,
    p5_orchestration,
    p6_futures_daily,
    p7_spot_trades,
    p8_scale,
)
from bench.core import ROOT, Context, Mode, ScenarioResult
from bench.report import fsync_ms, machine, render

Scenario = Callable[[Context], ScenarioResult]
SCENARIOS: dict[str, Scenario] = {
    "P1": p1_spot_cost.run,
    "P2": p2_rate_limit.run,
    "P3": p3_exports.run,
    "P4": p4_query.run,
    "P5": p5_orchestration.run,
    "P6": p6_futures_daily.run,
    "P7": p7_spot_trades.run,
    "P8": p8_scale.run,
}
DEFAULT_OUT = ROOT / "bench" / "results.md"
DEFAULT_WORK = ROOT / "bench" / "work"


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="reduced suite, under 3 minutes")
    size.add_argument("--smoke", action="store_true", help="tiny sizes: checks the code runs (make test)")
    ap.add_argument("--only", default="", help="comma-separated scenario keys, e.g. P1,P4")
    ap.add_argument("--out", type=Path, help="results file (default bench/results.md; smoke: <work-dir>/results.md)")
    ap.add_argument("--work-dir", type=Path, default=DEFAULT_WORK, help="scratch space, wiped per scenario")
    ap.add_argument(
        "--postgres-url",
        help="PostgreSQL server for P5's Postgres instance, e.g. the ORDERLAKE_TEST_POSTGRES_URL of deploy/services.sh",
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    mode: Mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    keys = [k.strip().upper() for k in args.only.split(",") if k.strip()] or list(SCENARIOS)
    unknown = sorted(set(keys) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    ctx = Context(mode, args.work_dir.resolve(), args.postgres_url)
    started = time.perf_counter()
    fsync_before = fsync_ms(ctx.work_dir)  # before and after: the shared disk's latency drifts during a run
    results = [_run(key, ctx) for key in keys]
    fsync = (fsync_before, fsync_ms(ctx.work_dir))
    text = render(results, mode=mode, seconds=time.perf_counter() - started, machine_text=machine(), fsync=fsync)
    out = args.out or (ctx.work_dir / "results.md" if mode == "smoke" else DEFAULT_OUT)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"written to {out}")
    return 0


def _run(key: str, ctx: Context) -> ScenarioResult:
    print(f"bench {key} ({ctx.mode}) ...", flush=True)
    t0 = time.perf_counter()
    result = SCENARIOS[key](ctx)
    result.seconds = time.perf_counter() - t0
    print(f"bench {key} done in {result.seconds:.0f} s", flush=True)
    return result

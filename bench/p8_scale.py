"""P8, the scaled run: N sandbox accounts backfilled in parallel by Celery workers vs the same accounts serially.

It is ``make scale-demo`` (:mod:`pipeline.scale.demo`) at a size per mode: every account's lake must equal its
truth with 0 × 429 and 0 × 418 for the figures to count. Reported: the wall time end to end (queue, run processes
and workers included) and of the runs alone, against the same runs one after another in one process, and the
throughput per worker (account-day partitions of the four tables per second per worker). Needs the loopback
services of deploy/services.sh; at smoke size it is not run (tests/integration/test_scale_demo.py runs it).
"""

from __future__ import annotations

from bench.core import Context, Figure, ScenarioResult, fmt_s
from pipeline.scale.demo import DemoConfig, run_demo

SIZES = {"quick": (3, 20), "full": (6, 30)}  # (accounts, days of history each)
WORKERS = 2


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult("P8", "Scaled run (Celery workers, Dagster on PostgreSQL, shared budget)")
    if ctx.mode == "smoke":
        result.details.append(
            "* not run at smoke size: tests/integration/test_scale_demo.py runs `make scale-demo N=3`"
        )
        return result
    accounts, days = SIZES[ctx.mode]
    lines: list[str] = []
    demo = run_demo(
        DemoConfig(accounts=accounts, workers=WORKERS, days=days, workdir=ctx.fresh_dir("p8")), say=lines.append
    )
    result.title += f" ({accounts} accounts × {days} days, {WORKERS} workers)"
    proven = "proven: lakes = truth, 0 × 429, 0 × 418, 1 id per account and market" if demo.ok else "NOT PROVEN"
    per_worker = demo.partitions / demo.parallel_s / WORKERS
    result.figures += [
        Figure(
            "P8",
            f"wall time, end to end: {accounts} accounts on {WORKERS} Celery workers vs serially in one process",
            f"{fmt_s(demo.parallel_s)} ({proven})",
            fmt_s(demo.serial_s),
            demo.parallel_s / demo.serial_s,
            why="includes the queue, one run process per account and the workers loading the code location",
        ),
        Figure(
            "P8",
            "wall time of the runs alone (first start to last end) vs the serial runs",
            fmt_s(demo.runs_window_s),
            fmt_s(demo.serial_runs_s),
            demo.runs_window_s / demo.serial_runs_s,
        ),
        Figure(
            "P8",
            "throughput per worker: account-day partitions per second per worker",
            f"{per_worker:.2f} /s/worker ({demo.partitions} partitions)",
            f"serial {demo.partitions / demo.serial_s:.2f} /s",
            None,
        ),
    ]
    result.details += [f"    {line}" for line in lines]
    return result

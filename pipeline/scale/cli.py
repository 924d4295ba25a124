"""``orderlake scale-demo`` (``make scale-demo N=…``): the arguments and the exit code of :mod:`pipeline.scale.demo`."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.scale.demo import DemoConfig, run_demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = DemoConfig()
    parser.add_argument("--accounts", type=int, default=d.accounts, help="sandbox accounts (N)")
    parser.add_argument("--workers", type=int, default=d.workers, help="Celery workers")
    parser.add_argument("--days", type=int, default=d.days, help="days of history per account (one year at most)")
    parser.add_argument("--workdir", type=Path, default=d.workdir, help="logs, Dagster's home, the data dirs")
    parser.add_argument("--timeout", type=float, default=None, help="seconds the backfill may take (default: by size)")
    parser.add_argument("--max-runs", type=int, default=None, help="runs at once (default: two per worker)")
    parser.add_argument("--keep", action="store_true", help="keep the demo's database and broker queue")


def run(args: argparse.Namespace) -> int:
    if (
        not 1 <= args.accounts <= 500
        or not 1 <= args.workers <= 32
        or not 1 <= args.days <= 365
        or not (args.max_runs is None or 1 <= args.max_runs <= 100)
    ):
        print("orderlake scale-demo: --accounts 1-500, --workers 1-32, --days 1-365, --max-runs 1-100")
        return 2
    config = DemoConfig(
        accounts=args.accounts,
        workers=args.workers,
        days=args.days,
        workdir=args.workdir.resolve(),
        timeout_s=args.timeout,
        keep=args.keep,
        max_runs=args.max_runs,
    )
    return 0 if run_demo(config).ok else 1

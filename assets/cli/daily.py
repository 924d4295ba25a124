"""``orderlake daily [--date D]``: the daily job in-process for one UTC day (default: yesterday on Binance's clock),
for users who drive orderlake from cron instead of the Dagster daemon; same progress bar and error handling as
``backfill``. Then the exports nothing else can replace (:func:`pipeline.futures.plan.plan_daily_exports`: days
REST missed beyond its retention, vanished orders, the optional monthly reconciliation), then the catalog.
"""

import argparse
import contextlib
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta

import dagster as dg

from assets.cli.backfill import BackfillFailed, backfill, instance, run_job
from assets.cli.gate import parse_day
from assets.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from pipeline import progress
from pipeline.binance import BinanceClient
from pipeline.futures.plan import export_needs, requests_of
from pipeline.settings import Settings
from pipeline.times import day_of

JOBS = {"all": "daily", "futures": "futures_orders_rest_backfill"}


@dataclass
class DailySummary:
    day: date
    runs: list[str] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)


def server_yesterday(settings: Settings) -> tuple[date, int]:
    """Yesterday on Binance's futures clock, and that clock's now."""
    with BinanceClient.from_settings(settings) as client:
        now = client.futures.server_time()
    return day_of(now) - timedelta(days=1), now


def daily(
    defs: dg.Definitions,
    inst: dg.DagsterInstance,
    settings: Settings,
    day: date,
    now: int,
    *,
    select: str = "all",
    quiet: bool = True,
) -> DailySummary:
    """Run the daily job for ``day``, request the unavoidable exports (printed first), rebuild the catalog (``all``;
    ``futures`` runs only the orders REST tail and leaves the catalog to the next full run)."""
    summary = DailySummary(day)
    tags = {RANGE_START_TAG: day.isoformat(), RANGE_END_TAG: day.isoformat()}
    summary.runs.append(run_job(defs, inst, JOBS[select], tags=tags, quiet=quiet).run_id)
    plans = export_needs(settings.data_dir, settings.account, now, settings)
    ranges = requests_of(plans)
    for p in plans:
        if p.exports:
            progress.notice(p.describe())
    for (start, end), markets in ranges.items():  # each market only for its own windows
        result = backfill(defs, inst, start, end, "exports", quiet=quiet, markets=markets)
        summary.runs += result.runs
        summary.exports += result.exports_ingested
    if not ranges and select == "all":
        summary.runs.append(run_job(defs, inst, "warehouse_build", tags={}, quiet=quiet).run_id)
    return summary


def run_daily_command(args: argparse.Namespace, settings: Settings) -> int:
    from assets.definitions import build_definitions

    yesterday, now = server_yesterday(settings)
    day = parse_day(args.date, "--date") if args.date else yesterday
    if day > yesterday:
        print(f"orderlake daily: {day} is not a complete UTC day yet; the last one is {yesterday}", file=sys.stderr)
        return 2
    bar = progress.ProgressBar() if not args.quiet else None
    try:
        with progress.listening(bar) if bar else contextlib.nullcontext():
            summary = daily(build_definitions(settings), instance(settings), settings, day, now, select=args.select)
    except BackfillFailed as exc:
        print(f"orderlake daily failed: {exc}", file=sys.stderr)
        return 1
    print(f"daily {day} ({args.select}) done: {len(summary.runs)} Dagster run(s), {len(summary.exports)} export(s)")
    return 0

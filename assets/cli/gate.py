"""What ``orderlake backfill`` checks before it loads Dagster or spends weight: the range, then every Binance
surface the selection needs (:mod:`pipeline.preflight`). Each refusal is one line naming the cause and the fix."""

import argparse
import sys
from datetime import UTC, date, datetime, timedelta

from pipeline import identity, preflight
from pipeline.settings import Settings


def parse_day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"orderlake backfill: {name} must be a date YYYY-MM-DD, not {text!r}") from None


def check_range(start: date, end: date, first: date) -> str | None:
    """Why the range cannot be backfilled, or None."""
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    if end < start:
        return f"--end {end} is before --start {start}"
    if start < first:
        return (
            f"--start {start} is before ORDERLAKE_START_DATE ({first}); set ORDERLAKE_START_DATE={start} to "
            "reach further back"
        )
    if end > yesterday:
        return f"--end {end} is not a complete UTC day yet; the last one is {yesterday}"
    return None


def refuse(args: argparse.Namespace, settings: Settings) -> int | None:
    """The exit code of a refused backfill (after printing why), or None to go ahead."""
    start, end = parse_day(args.start, "--start"), parse_day(args.end, "--end")
    problem = check_range(start, end, settings.start_date)
    if problem:
        print(f"orderlake backfill: {problem}", file=sys.stderr)
        return 2
    probe = preflight.run_probes(settings, preflight.surfaces_for(args.select, settings.spot_transport))
    problem = preflight.first_failure(probe)
    if problem:  # `orderlake check` shows every surface
        print(f"orderlake backfill: {problem}", file=sys.stderr)
        return 1
    current = identity.Identity(
        probe.uid,
        identity.hosts_of(settings.spot_url, settings.futures_url, settings.papi_url),
        identity.fingerprint(settings.api_key.reveal() if settings.api_key else None),
    )
    try:
        identity.verify(settings.data_dir.resolve(), settings.account, current)
    except identity.IdentityMismatch as exc:
        print(f"orderlake backfill: {exc}", file=sys.stderr)
        return 1
    return None

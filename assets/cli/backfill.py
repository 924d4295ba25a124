"""``orderlake backfill``: materialize a date range through Dagster, in-process, with a progress bar.

The runs go into the Dagster instance of ``DAGSTER_HOME`` when it is set (``make`` sets it to ``.dagster``), so
they show up in ``make ui`` like runs started there. For exports the command drives the whole chain: it requests
the download ids, then waits for the links exactly as the sensor would (same ledger, same pacing) and runs the
retrieval of each ready export, unless ``--no-wait`` leaves that to the sensor.
"""

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import dagster as dg

from assets.cli import gate
from assets.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from assets.common.recovery import process_tags, wait_for_pools
from assets.exports.assets import CHAINS, FILL_CHAINS
from assets.exports.sensors import ready_for_retrieval, retrieval_request
from assets.futures.definitions import ORDERS as FUTURES_ORDER_ASSETS
from assets.trades.exports import REQUEST_JOBS
from pipeline import progress
from pipeline.errors import PermanentError
from pipeline.exports.chain import ExportChain
from pipeline.exports.states import LedgerState
from pipeline.futures.plan import MarketPlan, plan_backfill, ranges_of
from pipeline.settings import Settings
from pipeline.times import day_of

# Dagster's own log lines stay out of the terminal (`--verbose` shows them); the CLI prints the cause itself.
POOL_WAIT_S = 3600.0  # how long a run waits for a pool slot a LIVE run holds (a dead run's slot is freed at once)
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class BackfillFailed(PermanentError):
    """A run failed; the message says which step and why (the Dagster error text, without a traceback). The CLI
    stops there: running the backfill again is the user's decision."""


@dataclass
class BackfillSummary:
    runs: list[str] = field(default_factory=list)
    spot_weight: int | None = None
    trades_weight: int | None = None
    exports_created: int = 0
    exports_ingested: list[str] = field(default_factory=list)
    exports_waiting: list[str] = field(default_factory=list)
    futures_weight: int | None = None


def instance(settings: Settings) -> dg.DagsterInstance:
    """The persistent instance of DAGSTER_HOME if configured, else a throwaway one (runs are then not kept)."""
    if settings.dagster_home is not None:
        settings.dagster_home.mkdir(parents=True, exist_ok=True)
        return dg.DagsterInstance.from_config(str(settings.dagster_home))
    return dg.DagsterInstance.ephemeral()


def root_cause(error: Any) -> str:
    """The innermost message of a Dagster error chain ("Exceeded max_retries" wraps the error that was retried),
    without the exception's module path: the text that names the cause and the fix."""
    while error.cause is not None:
        error = error.cause
    text = error.message.strip().splitlines()[0] if error.message.strip() else "failed"
    head, sep, rest = text.partition(": ")
    return rest if sep and "." in head and " " not in head else text


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            data = event.step_failure_data
            why = (
                data.user_failure_data.description
                if data.user_failure_data and data.user_failure_data.description
                else root_cause(data.error)
                if data.error
                else "failed"
            )
            return f"step {event.step_key}: {why}"
    return "the run failed (see the run's logs in `make ui`)"


def run_job(
    defs: dg.Definitions,
    inst: dg.DagsterInstance,
    job: str,
    *,
    tags: dict[str, str],
    quiet: bool = True,
    assets: Sequence[str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Run ``job`` in-process (only ``assets`` of it, when given); raises :class:`BackfillFailed`."""
    job_def = defs.resolve_job_def(job)
    pools = {p for n in job_def.graph.node_dict.values() if (p := getattr(n.definition, "pool", None))}
    for r in wait_for_pools(inst, pools, timeout_s=POOL_WAIT_S, say=progress.notice):
        progress.notice(f"run {r.run_id[:8]} ({r.job}): {r.what}")
    result = job_def.execute_in_process(
        instance=inst,
        tags={**tags, **process_tags()},
        raise_on_error=False,
        run_config=QUIET_LOGS if quiet else None,
        asset_selection=[dg.AssetKey(a) for a in assets] if assets else None,
    )
    if not result.success:
        raise BackfillFailed(
            f"{job} ({tags.get(RANGE_START_TAG, '')}..{tags.get(RANGE_END_TAG, '')}): {_failure_text(result)}"
        )
    return result


def _range_tags(start: date, end: date) -> dict[str, str]:
    return {RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()}


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    """Metadata of the asset's last materialization in the run (a range run's summary rides on its last day)."""
    for event in reversed(result.get_asset_materialization_events()):
        mat = event.step_materialization_data.materialization
        if mat.asset_key.to_user_string() == asset:
            return {k: v.value for k, v in mat.metadata.items()}
    return {}


def backfill(
    defs: dg.Definitions,
    inst: dg.DagsterInstance,
    start: date,
    end: date,
    select: str,
    *,
    wait: bool = True,
    quiet: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    wait_timeout_s: float | None = None,
    plans: list[MarketPlan] | None = None,
    markets: Sequence[str] | None = None,
) -> BackfillSummary:
    """Run the selected parts for ``start``..``end``, then rebuild the catalog. Raises BackfillFailed.

    ``plans`` (:func:`pipeline.futures.plan.plan_backfill`) narrow ``all`` to the cheapest mix: exports only for the
    days REST no longer serves whole, REST for the others; without them ``all`` exports the whole range. ``markets``
    narrows the order exports to those markets' request assets."""
    summary = BackfillSummary()
    tags = _range_tags(start, end)
    failures: list[str] = []  # one market's failure never stops the other's, nor the catalog rebuild
    if select in ("spot", "all"):
        res = run_job(defs, inst, "spot_backfill", tags=tags, quiet=quiet)
        summary.runs.append(res.run_id)
        summary.spot_weight = _metadata(res, "spot_orders").get("weight_spent")
    if select in ("exports", "all"):
        export_ranges = [(start, end)]
        if plans is not None and select == "all":
            export_ranges = ranges_of(plans)
        for a, b in export_ranges:
            try:
                chosen = [c.requests for c in CHAINS if c.market in markets] if markets else None
                res = run_job(defs, inst, "export_requests", tags=_range_tags(a, b), quiet=quiet, assets=chosen)
                summary.runs.append(res.run_id)
                summary.exports_created += sum(int(_metadata(res, c.requests).get("ids_created", 0)) for c in CHAINS)
            except BackfillFailed as exc:
                failures.append(str(exc))
        if wait and export_ranges:
            failures += _drive_exports(
                defs, inst, start, end, summary, quiet=quiet, sleep=sleep, timeout_s=wait_timeout_s
            )
    if select in ("futures", "all"):  # after the exports: REST refreshes the orders they left open
        first = start
        if plans is not None and select == "all":
            first = min((p.rest_from for p in plans if p.rest_from is not None), default=end + timedelta(days=1))
        if first <= end:
            res = run_job(defs, inst, "futures_orders_rest_backfill", tags=_range_tags(first, end), quiet=quiet)
            summary.runs.append(res.run_id)
            summary.futures_weight = sum(int(_metadata(res, a).get("weight", 0)) for a in FUTURES_ORDER_ASSETS)
    # trades and income older than REST's retention come from their exports (asked for only those days)
    fills = [k for k, sel in (("trade", "trades"), ("income", "income")) if select in (sel, "all")]
    for kind in fills:
        try:
            res = run_job(defs, inst, REQUEST_JOBS[kind], tags=tags, quiet=quiet)
            summary.runs.append(res.run_id)
            summary.exports_created += sum(
                int(_metadata(res, c.requests).get("ids_created", 0)) for c in FILL_CHAINS if c.kind == kind
            )
        except BackfillFailed as exc:
            failures.append(str(exc))
    if fills and wait:
        failures += _drive_exports(defs, inst, start, end, summary, quiet=quiet, sleep=sleep, timeout_s=wait_timeout_s)
    # trades and income are planned from the orders the steps above wrote
    if select in ("trades", "all"):
        res = run_job(defs, inst, "spot_trades_backfill", tags=tags, quiet=quiet)
        summary.runs.append(res.run_id)
        summary.trades_weight = _metadata(res, "spot_trades").get("weight")
        res = run_job(defs, inst, "futures_trades_backfill", tags=tags, quiet=quiet)
        summary.runs.append(res.run_id)
    if select in ("income", "all"):
        res = run_job(defs, inst, "futures_income_backfill", tags=tags, quiet=quiet)
        summary.runs.append(res.run_id)
    res = run_job(defs, inst, "warehouse_build", tags={}, quiet=quiet)
    summary.runs.append(res.run_id)
    if failures:
        raise BackfillFailed("; ".join(failures) + " (the catalog was rebuilt with what did land)")
    return summary


def _drive_exports(
    defs: dg.Definitions,
    inst: dg.DagsterInstance,
    start: date,
    end: date,
    summary: BackfillSummary,
    *,
    quiet: bool,
    sleep: Callable[[float], None],
    timeout_s: float | None,
) -> list[str]:
    """Poll and retrieve like the sensor does, until no export of this range is processing; returns the failures."""
    with dg.build_resources({"exports": defs.resources["exports"]}) as resources:
        return _poll_and_retrieve(
            defs, inst, resources.exports.chain(), start, end, summary, quiet=quiet, sleep=sleep, timeout_s=timeout_s
        )


def _poll_and_retrieve(
    defs: dg.Definitions,
    inst: dg.DagsterInstance,
    chain: ExportChain,
    start: date,
    end: date,
    summary: BackfillSummary,
    *,
    quiet: bool,
    sleep: Callable[[float], None],
    timeout_s: float | None,
) -> list[str]:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    failures: list[str] = []
    failed: set[str] = set()
    while True:
        for outcome in chain.poll_due():
            if outcome.status == "error":
                failures.append(outcome.message)
        for spec, entry in ready_for_retrieval(chain):
            if day_of(entry.end_ms) < start or day_of(entry.start_ms) > end or str(entry.download_id) in failed:
                continue  # another range's export (the sensor takes care of it), or one that failed already
            req = retrieval_request(spec, entry)
            try:
                res = run_job(defs, inst, spec.retrieval_job, tags=dict(req.tags), quiet=quiet)
            except BackfillFailed as exc:
                failed.add(str(entry.download_id))
                failures.append(str(exc))
                continue
            summary.runs.append(res.run_id)
            summary.exports_ingested.append(str(entry.download_id))
        processing = [
            e
            for e in chain.ledger.entries(account=chain.account, status=LedgerState.PROCESSING)
            if day_of(e.end_ms) >= start and day_of(e.start_ms) <= end
        ]
        total = len(summary.exports_ingested) + len(processing)
        progress.report("exports", len(summary.exports_ingested), total, note=f"{len(processing)} processing")
        if not processing:
            return failures
        if deadline is not None and time.monotonic() > deadline:
            summary.exports_waiting = [e.describe() for e in processing]
            return failures
        nxt = chain.ledger.next_poll_time(account=chain.account)
        sleep(max(0.05, (nxt / 1000 - time.time()) if nxt else 1.0))


def futures_plans(settings: Settings, start: date, end: date) -> list[MarketPlan]:
    """:func:`pipeline.futures.plan.plan_backfill` at Binance's time (one time call, weight 1)."""
    from pipeline.binance import BinanceClient

    with BinanceClient.from_settings(settings) as client:
        now = client.futures.server_time()
    return plan_backfill(settings.data_dir, settings.account, start, end, now)


def run_backfill_command(args: argparse.Namespace, settings: Settings) -> int:
    start, end = gate.parse_day(args.start, "--start"), gate.parse_day(args.end, "--end")
    if args.no_probe:
        settings = settings.replace(spot_probe="targeted")
    from assets.definitions import build_definitions

    plans = None
    if args.select == "all":  # the cheapest mix of REST and exports, printed before anything is spent
        plans = futures_plans(settings, start, end)
        for p in plans:
            print(f"plan {p.describe()}")
    bar = progress.ProgressBar() if not args.quiet else None
    try:
        with progress.listening(bar) if bar else contextlib.nullcontext():
            summary = backfill(
                build_definitions(settings),
                instance(settings),
                start,
                end,
                args.select,
                wait=not args.no_wait,
                plans=plans,
                quiet=not args.verbose,
            )
    except BackfillFailed as exc:
        print(f"orderlake backfill failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"backfill {start}..{end} ({args.select}) done: {len(summary.runs)} Dagster run(s)"
        + (f", spot weight {summary.spot_weight}" if summary.spot_weight is not None else "")
        + (f", trades weight {summary.trades_weight}" if summary.trades_weight is not None else "")
        + (f", futures orders weight {summary.futures_weight}" if summary.futures_weight is not None else "")
        + (
            f", {summary.exports_created} export id(s) requested, {len(summary.exports_ingested)} ingested"
            if args.select != "spot"
            else ""
        )
    )
    if args.no_wait and args.select in ("exports", "all"):
        print("exports: the link sensor (make ui) retrieves them when Binance has generated the files")
    return 0

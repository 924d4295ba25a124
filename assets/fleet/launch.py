"""One queued run per account: ``python -m assets.fleet.launch queue --webserver URL --start D --end D ACCOUNT...``.

Each run targets one account's days (partition range ``<account>|<start>`` … ``<account>|<end>``) and carries the
tag ``orderlake/account``, on which the queued run coordinator limits runs per account (deploy/celery/dagster.yaml).
The runs are submitted through the webserver's GraphQL API (``dagster_graphql.DagsterGraphQLClient``, Dagster's
public client; what the UI's launch button does), which hands them to the instance's run queue; the daemon launches
them. ``--wait`` polls the instance until every run has finished and prints their outcome as JSON. ``serial`` runs
the same accounts one after another in this process (the baseline of ``make scale-demo``).
"""

import argparse
import json
import sys
import time
from datetime import date
from urllib.parse import urlsplit

import dagster as dg

from assets.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from assets.exports.assets import FILL_CHAINS
from assets.fleet.assets import ACCOUNT_TAG
from assets.fleet.definitions import JOB
from assets.fleet.fills import JOB as FILL_JOB
from assets.fleet.tails import FLEET_TAILS
from assets.fleet.tails import JOB as REST_JOB

FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def run_tags(account: str, start: date, end: date) -> dict[str, str]:
    return {ACCOUNT_TAG: account, RANGE_START_TAG: f"{account}|{start}", RANGE_END_TAG: f"{account}|{end}"}


def queue_runs(webserver: str, accounts: list[str], start: date, end: date) -> list[str]:
    """Submit one run of the fleet job per account to the run queue; returns the run ids in account order."""
    from dagster_graphql import DagsterGraphQLClient

    parts = urlsplit(webserver)
    client = DagsterGraphQLClient(
        parts.hostname or "127.0.0.1", port_number=parts.port, use_https=parts.scheme == "https"
    )
    return [client.submit_job_execution(JOB, tags=run_tags(account, start, end)) for account in accounts]


def wait_for(instance: dg.DagsterInstance, run_ids: list[str], timeout_s: float, poll_s: float = 0.5) -> list[dict]:
    """Block until every run has finished (or ``timeout_s``); each run's account, status and times."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = [instance.get_run_by_id(i) for i in run_ids]
        if all(r is not None and r.status in FINISHED for r in runs) or time.monotonic() > deadline:
            break
        time.sleep(poll_s)
    out = []
    for run_id, run in zip(run_ids, runs, strict=True):
        record = instance.get_run_record_by_id(run_id)
        out.append(
            {
                "run_id": run_id,
                "account": run.tags.get(ACCOUNT_TAG) if run else None,
                "status": run.status.value if run else "missing",
                "start": record.start_time if record else None,
                "end": record.end_time if record else None,
            }
        )
    return out


def run_serially(
    accounts: list[str],
    start: date,
    end: date,
    instance: dg.DagsterInstance | None = None,
    settings=None,
    job_name: str = JOB,
    selection: list[str] | None = None,
) -> list[dict]:
    """The runs one after another, in this process, with the in-process executor (the demo's baseline and
    ``orderlake backfill`` with an accounts file): ``selection`` of ``job_name``'s assets, or all of them. A failed
    account does not stop the next one."""
    from assets.definitions import build_definitions
    from pipeline.settings import Settings

    job = build_definitions(settings or Settings.from_env()).resolve_job_def(job_name)
    out = []
    for account in accounts:
        t0 = time.monotonic()
        result = job.execute_in_process(
            instance=instance or dg.DagsterInstance.ephemeral(),
            tags=run_tags(account, start, end),
            asset_selection=[dg.AssetKey(a) for a in selection] if selection else None,
            raise_on_error=False,
        )
        failure = next((e.message for e in result.all_events if e.is_step_failure), None)
        out.append(
            {"account": account, "success": result.success, "seconds": time.monotonic() - t0, "failure": failure}
        )
    return out


def _tails(kind: str) -> list[str]:
    return [t.name for t in FLEET_TAILS if t.kind == kind]


def _fills(kind: str) -> list[str]:
    return [c.table_asset for c in FILL_CHAINS if c.kind == kind]


# --select -> (job, its assets to run; None: all of them), in the order they run
BACKFILL_SELECTIONS: dict[str, list[tuple[str, list[str] | None]]] = {
    "spot": [(JOB, ["spot_orders", "spot_order_lists"])],
    "exports": [(JOB, ["futures_orders", "pm_um_orders"])],
    "futures": [(REST_JOB, _tails("orders"))],
    # trades and income: the exports for the days older than REST's retention, then REST for the others
    "trades": [(FILL_JOB, _fills("trade")), (REST_JOB, _tails("trades"))],
    "income": [(FILL_JOB, _fills("income")), (REST_JOB, _tails("income"))],
    "all": [(JOB, None), (FILL_JOB, None), (REST_JOB, None)],  # the tails last: REST refreshes what exports left open
}


def run_backfill_command(args, settings) -> int:
    """``orderlake backfill`` with an accounts file: the fleet's jobs for every account, in turn, limited to what
    ``--select`` names (``spot`` never spends a download id)."""
    from pipeline.accounts import fleet_of

    fleet = fleet_of(settings)
    accounts = list(fleet.names)
    home = settings.dagster_home
    instance = dg.DagsterInstance.from_config(str(home)) if home else dg.DagsterInstance.ephemeral()
    start, end = date.fromisoformat(args.start), date.fromisoformat(args.end)
    results = []
    for job_name, selection in BACKFILL_SELECTIONS[args.select]:
        results += run_serially(accounts, start, end, instance, settings, job_name, selection)
    for r in results:
        print(f"{r['account']}: {'ok' if r['success'] else 'FAILED: ' + str(r['failure'])} ({r['seconds']:.0f} s)")
    return 0 if all(r["success"] for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assets.fleet.launch", description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["queue", "serial"])
    parser.add_argument("--start", type=date.fromisoformat, required=True)
    parser.add_argument("--end", type=date.fromisoformat, required=True)
    parser.add_argument("--webserver", default="http://127.0.0.1:3000", help="the dagster-webserver to submit to")
    parser.add_argument("--wait", type=float, default=None, help="seconds to wait for the queued runs to finish")
    parser.add_argument("accounts", nargs="+")
    args = parser.parse_args(argv)
    if args.mode == "serial":
        print(json.dumps({"serial": run_serially(args.accounts, args.start, args.end)}, default=str))
        return 0
    with dg.DagsterInstance.get() as instance:
        ids = queue_runs(args.webserver, args.accounts, args.start, args.end)
        runs = wait_for(instance, ids, args.wait) if args.wait else [{"run_id": i} for i in ids]
    print(json.dumps({"runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

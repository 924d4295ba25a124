"""Kill an `orderlake backfill` with SIGKILL at a chosen point, deterministically: a child process wraps one
function so that its (n+1)-th call kills the process, then runs the CLI. The kill points cover a step holding
its pool slot (spot discovery, a spot day being published, export planning before any create call), an export
retrieval and the gap between two runs.

``python -m tests.support.crash --trials 30`` runs the random trial recorded in bench/results.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# (name, select, "module:attribute[.method]", calls that pass before the kill)
KILL_POINTS = (
    ("spot discovery, holding the spot slot", "spot", "assets.spot.assets:discover_symbols", 0),
    ("a spot day being published, holding the slot", "spot", "pipeline.storage.lake:write_partition", 2),
    ("export planning, holding the export slot", "exports", "pipeline.exports.chain:ExportChain.plan", 0),
    ("an export file being ingested", "exports", "pipeline.exports.ingest:write_export_partitions", 0),
    ("between the spot run and the catalog", "spot", "assets.cli.backfill:_metadata", 0),
)

# the random trial: how many calls of each point a backfill of its selection makes at most (a later kill never fires)
TRIAL_MAX_AFTER = {
    "assets.spot.assets:discover_symbols": 0,
    "pipeline.storage.lake:write_partition": 15,
    "pipeline.exports.chain:ExportChain.plan": 1,
    "pipeline.exports.ingest:write_export_partitions": 1,
    "assets.cli.backfill:_metadata": 0,
}


def _killer_main() -> None:
    target, after, argv = sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
    module_name, _, path = target.partition(":")
    owner = importlib.import_module(module_name)
    *parents, attr = path.split(".")
    for name in parents:
        owner = getattr(owner, name)
    original, calls = getattr(owner, attr), [0]

    def killer(*args, **kwargs):
        calls[0] += 1
        if calls[0] > after:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(owner, attr, killer)
    from assets.cli import main

    sys.exit(main(argv))


def futures_truth(truth: dict, market: str, start: date, end: date) -> list[dict]:
    """The sandbox's orders of ``market`` last updated on start..end, as the export columns store them."""
    from pipeline.storage.schemas import futures_orders
    from pipeline.times import day_start_ms, day_window
    from tests.support.exports import FROM_EXPORT

    lo, hi = day_start_ms(start), day_window(end)[1]
    want = [o for o in truth[f"{market}_orders"] if lo <= o["updateTime"] <= hi]
    rows = futures_orders.from_api(want, account="main", market=market, source="truth", ingested_at=0).to_pylist()
    return sorted(({k: r[k] for k in FROM_EXPORT} for r in rows), key=lambda r: (r["symbol"], r["order_id"]))


def lake_equals_truth(data: Path, truth: dict, select: str, start: date, end: date) -> bool:
    from tests.support.assets import lake_rows, truth_spot_orders
    from tests.support.exports import FROM_EXPORT

    if select == "spot":
        rows = lake_rows(data, "spot_orders")
        return bool(rows) and rows == truth_spot_orders(truth, start, end)
    for market, table in (("usdm", "futures_orders"), ("pm_um", "pm_um_orders")):
        got = sorted(
            ({k: r[k] for k in FROM_EXPORT} for r in lake_rows(data, table)), key=lambda r: (r["symbol"], r["order_id"])
        )
        if not got or got != futures_truth(truth, market, start, end):
            return False
    return True


def backfill_argv(select: str, start: date, end: date) -> list[str]:
    return ["backfill", "--start", start.isoformat(), "--end", end.isoformat(), "--select", select, "--quiet"]


def kill_at(env: dict[str, str], target: str, after: int, argv: list[str], timeout: float = 240) -> int:
    """Run the CLI in a child that SIGKILLs itself at ``target``; its return code (-9 when the kill happened)."""
    cmd = [sys.executable, "-m", "tests.support.crash", "--kill", target, str(after), json.dumps(argv)]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, timeout=timeout).returncode


def _trial(trials: int, seed: int) -> None:
    """Random kill points and call counts against one sandbox; each following backfill must complete."""
    from pipeline.sandbox.testing import sandbox_env, start_sandbox
    from tests.support.exports import EXPORT_SANDBOX

    rng, work = random.Random(seed), Path(os.environ.get("TMPDIR", "/tmp")) / f"orderlake-crash-{os.getpid()}"
    end = datetime.now(UTC).date() - timedelta(days=1)
    start = end - timedelta(days=9)
    outcomes = []
    with start_sandbox(**{**EXPORT_SANDBOX, "history_days": 30, "delisted_symbol": False}) as sx:
        for i in range(trials):
            shutil.rmtree(work, ignore_errors=True)
            home = work / "dagster"
            home.mkdir(parents=True)
            shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
            env = {**os.environ, **sandbox_env(sx, work / "data"), "DAGSTER_HOME": str(home)}
            env |= {"ORDERLAKE_START_DATE": start.isoformat(), "ORDERLAKE_BUDGET_DIR": str(work / "budget")}
            env["ORDERLAKE_TIME_SCALE"] = str(sx.cfg.time_scale)  # the chain's pacing runs as fast as the sandbox
            name, select, target, _ = rng.choice(KILL_POINTS)
            after = rng.randrange(0, TRIAL_MAX_AFTER[target] + 1)
            argv = backfill_argv(select, start, end)
            killed = kill_at(env, target, after, argv) == -signal.SIGKILL
            started = time.monotonic()
            again = subprocess.run(
                [sys.executable, "-m", "pipeline", *argv], env=env, cwd=ROOT, capture_output=True, timeout=600
            )
            equal = again.returncode == 0 and lake_equals_truth(work / "data", sx.truth(), select, start, end)
            outcomes.append((i, name, after, killed, again.returncode, equal, round(time.monotonic() - started, 1)))
            print(*outcomes[-1], flush=True)
    shutil.rmtree(work, ignore_errors=True)
    completed, equal = sum(1 for o in outcomes if o[4] == 0), sum(1 for o in outcomes if o[5])
    print(
        f"{sum(o[3] for o in outcomes)} of {len(outcomes)} runs killed; {completed} following backfills completed, "
        f"{equal} with the lake equal to the truth"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--kill":
        _killer_main()
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    _trial(args.trials, args.seed)

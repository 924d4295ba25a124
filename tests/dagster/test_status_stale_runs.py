"""`orderlake status` lists stale runs and what it did about them: a run whose process is gone, still STARTED and
holding a pool slot, is marked failed and its slot freed by the status command itself ("now"); the next status still
lists it ("earlier"), and a run of a live process is left alone."""

import shutil
import socket
import subprocess
import sys

import dagster as dg

from assets.cli import main
from assets.common import recovery
from pipeline.settings import Settings
from tests.support.crash import ROOT

POOL = "binance_spot"


def _started_run(instance: dg.DagsterInstance, name: str, tags: dict[str, str]) -> dg.DagsterRun:
    run = instance.create_run_for_job(dg.GraphDefinition(name).to_job(), tags=tags)
    instance.handle_new_event(
        dg.EventLogEntry(
            error_info=None,
            level="DEBUG",
            user_message="",
            run_id=run.run_id,
            timestamp=0.0,
            dagster_event=dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name=run.job_name),
        )
    )
    return instance.get_run_by_id(run.run_id)


def test_status_recovers_a_dead_runs_slot_and_says_so(tmp_path, capsys) -> None:
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    storage = instance.event_log_storage
    storage.set_concurrency_slots(POOL, 2)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = gone.stdout.strip()  # a process that has exited; its start tick "0" tells a reused pid apart
    dead = _started_run(
        instance,
        "killed",
        {recovery.PID_TAG: dead_pid, recovery.HOST_TAG: socket.gethostname(), recovery.START_TAG: "0"},
    )
    live = _started_run(instance, "alive", recovery.process_tags())
    for run in (dead, live):
        assert run.status == dg.DagsterRunStatus.STARTED
        assert storage.claim_concurrency_slot(POOL, run.run_id, "spot_orders").is_claimed
    settings = Settings(data_dir=tmp_path / "data", dagster_home=home)

    assert main(["status"], settings) == 0
    report = capsys.readouterr().out
    what = f"process {dead_pid} is gone (killed?): marked the run failed and freed its pool slots"
    assert f"run {dead.run_id[:8]} killed: {what} (now)" in report, report
    assert live.run_id[:8] not in report
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED
    assert storage.get_concurrency_run_ids() == {live.run_id}  # the live run keeps its slot

    assert main(["status"], settings) == 0
    again = capsys.readouterr().out
    assert f"run {dead.run_id[:8]} killed: {what} (earlier)" in again and "(now)" not in again, again

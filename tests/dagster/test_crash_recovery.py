"""Runs recover from crashes by themselves: a backfill killed with SIGKILL at each kill point of
tests/support/crash.py (three of them while a step holds its pool slot) leaves its run STARTED; the next backfill
marks it failed, frees its slot, completes unaided with the lake equal to the truth, and `orderlake status`
lists what was done. A slot a LIVE run holds is waited for, boundedly, naming the run."""

import os
import shutil
import signal
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from assets.cli import backfill as backfill_cli
from assets.cli import main
from assets.common import recovery
from pipeline.sandbox.testing import sandbox_env, start_sandbox
from pipeline.settings import Settings
from pipeline.times import day_of
from tests.support.crash import KILL_POINTS, ROOT, backfill_argv, kill_at, lake_equals_truth
from tests.support.exports import EXPORT_SANDBOX


@pytest.fixture(scope="module")
def sandbox():
    with start_sandbox(**{**EXPORT_SANDBOX, "history_days": 20, "delisted_symbol": False}) as sx:
        yield sx


@pytest.fixture(scope="module")
def days(sandbox) -> tuple[date, date]:
    """Five days up to the sandbox's yesterday: its day, not the wall clock's, however late a test runs."""
    end = day_of(sandbox.exchange.clock.market()) - timedelta(days=1)
    return end - timedelta(days=4), end


def _env(sx, work: Path, start: date) -> dict[str, str]:
    home = work / "dagster"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, **sandbox_env(sx, work / "data"), "DAGSTER_HOME": str(home)}
    env["ORDERLAKE_TIME_SCALE"] = str(sx.cfg.time_scale)  # the chain's pacing runs as fast as the sandbox
    return env | {"ORDERLAKE_START_DATE": start.isoformat(), "ORDERLAKE_BUDGET_DIR": str(work / "budget")}


@pytest.mark.slow
@pytest.mark.parametrize("point", KILL_POINTS, ids=[p[0] for p in KILL_POINTS])
def test_the_backfill_after_a_sigkill_completes_unaided(sandbox, days, tmp_path, monkeypatch, capsys, point) -> None:
    _, select, target, after = point
    start, end = days
    env = _env(sandbox, tmp_path, start)
    argv = backfill_argv(select, start, end)
    assert kill_at(env, target, after, argv) == -signal.SIGKILL
    settings = Settings.from_env(env)
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    stale = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    monkeypatch.setattr(backfill_cli, "POOL_WAIT_S", 30.0)  # a regression fails here instead of hanging
    for name, value in settings.secret_environment().items():
        monkeypatch.setenv(name, value)

    assert main(argv, settings) == 0, capsys.readouterr().err
    assert lake_equals_truth(settings.data_dir, sandbox.truth(), select, start, end)
    for run in stale:  # the killed run: failed now, holding nothing
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    assert not instance.event_log_storage.get_concurrency_run_ids()
    capsys.readouterr()
    assert main(["status"], settings) == 0
    report = capsys.readouterr().out
    for run in stale:
        assert f"run {run.run_id[:8]} {run.job_name}: process {run.tags[recovery.PID_TAG]} is gone" in report


def test_a_live_holder_is_waited_for_boundedly_and_named(tmp_path) -> None:
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    run = instance.create_run_for_job(dg.GraphDefinition("held").to_job(), tags=recovery.process_tags())
    storage = instance.event_log_storage
    storage.set_concurrency_slots("binance_spot", 1)
    assert storage.claim_concurrency_slot("binance_spot", run.run_id, "spot_orders").is_claimed
    said: list[str] = []
    clock = iter(range(0, 1000, 10))
    with pytest.raises(recovery.PoolBusy) as busy:
        recovery.wait_for_pools(
            instance, ["binance_spot"], timeout_s=25, say=said.append, sleep=lambda s: None, now=lambda: next(clock)
        )
    holder = f"pool binance_spot: step spot_orders of run {run.run_id[:8]} (held, pid {os.getpid()})"
    assert said == [f"waiting for {holder}"]  # said once, not on every poll
    assert holder in str(busy.value) and "after 25 s" in str(busy.value)
    assert recovery.recover_stale_runs(instance) == []  # this process lives: its slot is not taken away
    assert storage.get_concurrency_run_ids() == {run.run_id}

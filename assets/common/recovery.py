"""Runs whose process died (kill -9, an OOM kill, a reboot) must not hold their pool slot forever.

Every run ``orderlake`` starts carries the pid, host and process start time of its process in its tags. Before a
run waits for a pool slot, :func:`recover_stale_runs` marks each run whose process is gone failed and frees its
slots (``free_concurrency_slots_for_run``, what the UI's "free slots" does); slots of runs that already ended are
freed too. Runs of another host or without the tags (launched by ``dagster dev``) are left to Dagster's run
monitoring (deploy/dagster.yaml, docs/dagster.md §Instance and run monitoring). :func:`wait_for_pools` bounds the
wait for a slot a live run holds and says which run it waits for.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster import DagsterRunStatus

from pipeline.errors import TransientError

PID_TAG, HOST_TAG, START_TAG = "orderlake/pid", "orderlake/host", "orderlake/process_start"
RECOVERED_TAG = "orderlake/recovered"
IN_PROGRESS = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
ENDED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
POLL_S = 2.0


class PoolBusy(TransientError):
    """A live run still holds the pool slot after the bounded wait."""


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat): tells a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def process_tags() -> dict[str, str]:
    """The tags that let a later process tell whether this one is still alive."""
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    start = _start_ticks(os.getpid())
    return tags | ({START_TAG: start} if start else {})


def owner_alive(tags: dict[str, str]) -> bool | None:
    """Whether the run's process lives; None when this host cannot tell (no tags, another host)."""
    if PID_TAG not in tags or tags.get(HOST_TAG) != socket.gethostname():
        return None
    pid = int(tags[PID_TAG])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    recorded = tags.get(START_TAG)
    return recorded is None or _start_ticks(pid) in (None, recorded)


@dataclass(frozen=True)
class Recovered:
    run_id: str
    job: str
    what: str


def recover_stale_runs(instance: dg.DagsterInstance) -> list[Recovered]:
    """Mark runs of dead processes failed and free the slots they (or runs that ended) still hold."""
    storage = instance.event_log_storage
    holding = storage.get_concurrency_run_ids() if storage.supports_global_concurrency_limits else set()
    running = {r.run_id: r for r in instance.get_runs(dg.RunsFilter(statuses=IN_PROGRESS))}
    done: list[Recovered] = []
    for run_id in sorted(holding | set(running)):
        run = running.get(run_id) or instance.get_run_by_id(run_id)
        if run is None or run.status in ENDED:
            if run_id in holding:
                storage.free_concurrency_slots_for_run(run_id)
                done.append(Recovered(run_id, run.job_name if run else "?", "freed the pool slots of an ended run"))
            continue
        if owner_alive(run.tags) is not False:
            continue
        what = f"process {run.tags[PID_TAG]} is gone (killed?): marked the run failed" + (
            " and freed its pool slots" if run_id in holding else ""
        )
        instance.report_run_failed(run, f"orderlake: the {what}.")
        if run_id in holding:
            storage.free_concurrency_slots_for_run(run_id)
        instance.add_run_tags(run_id, {RECOVERED_TAG: what})
        done.append(Recovered(run_id, run.job_name, what))
    return done


def _holders(instance: dg.DagsterInstance, pools: Iterable[str]) -> list[str]:
    """Who holds a full pool, one phrase each."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    out = []
    for pool in sorted(set(pools)):
        info = storage.get_concurrency_info(pool)
        if info.limit is None or len(info.claimed_slots) < info.limit:
            continue
        for slot in info.claimed_slots:
            run = instance.get_run_by_id(slot.run_id)
            pid = run.tags.get(PID_TAG, "?") if run else "?"
            job = run.job_name if run else "?"
            out.append(f"pool {pool}: step {slot.step_key} of run {slot.run_id[:8]} ({job}, pid {pid})")
    return out


def wait_for_pools(
    instance: dg.DagsterInstance,
    pools: Iterable[str],
    *,
    timeout_s: float,
    say: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.monotonic,
) -> list[Recovered]:
    """Recover stale runs, then wait (at most ``timeout_s``) until no live run fills one of ``pools``."""
    pools = list(pools)
    recovered = recover_stale_runs(instance)
    deadline, told = now() + timeout_s, ""
    while holders := _holders(instance, pools):
        text = "; ".join(holders)
        if now() > deadline:
            raise PoolBusy(
                f"still waiting after {timeout_s:.0f} s for {text}. That run is alive (its process exists); let it "
                "finish, or stop it (`make ui`, Runs, Terminate) and run this again."
            )
        if text != told:
            say(f"waiting for {text}")
            told = text
        sleep(POLL_S)
        recovered += recover_stale_runs(instance)
    return recovered


@dg.sensor(
    name="stale_run_recovery",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks runs whose process died failed and frees the pool slots they hold, so that schedules and "
    "backfills on that pool never wait for a dead run.",
)
def stale_run_recovery(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    done = recover_stale_runs(context.instance)
    return dg.SkipReason("; ".join(f"run {r.run_id[:8]} ({r.job}): {r.what}" for r in done) or "no stale run")

"""The Dagster part of ``orderlake status``: stale runs recovered now and earlier (assets/common/recovery.py)."""

from __future__ import annotations

import dagster as dg

from assets.common.recovery import RECOVERED_TAG, recover_stale_runs
from pipeline.settings import Settings

RECENT = 200  # failed runs looked at for earlier recoveries


def stale_runs_section(settings: Settings) -> list[str]:
    """Lines for the report; none without a persistent instance (DAGSTER_HOME)."""
    home = settings.dagster_home
    if home is None or not home.exists():
        return []
    instance = dg.DagsterInstance.from_config(str(home))
    now = recover_stale_runs(instance)
    lines = ["", "Stale runs (a process that died while its run was in progress)"]
    lines += [f"  run {r.run_id[:8]} {r.job}: {r.what} (now)" for r in now]
    now_ids = {r.run_id for r in now}
    for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]), limit=RECENT):
        if RECOVERED_TAG in run.tags and run.run_id not in now_ids:
            lines.append(f"  run {run.run_id[:8]} {run.job_name}: {run.tags[RECOVERED_TAG]} (earlier)")
    if len(lines) == 2:
        lines.append("  none: no run holds a pool slot for a dead process")
    return lines

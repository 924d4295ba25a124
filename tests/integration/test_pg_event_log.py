"""deploy/dagster-postgres.yaml and deploy/celery/dagster.yaml on the loopback PostgreSQL: the instance each describes
loads (PostgreSQL run, event and schedule storage, queued runs, run monitoring), and its event log keeps one
connection per process where dagster-postgres's own opens one per statement batch."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster_postgres import PostgresEventLogStorage

from assets.common.pg_event_log import PooledPostgresEventLogStorage

ROOT = Path(__file__).resolve().parents[2]


def _backend_pids(storage: PostgresEventLogStorage, times: int) -> set[int]:
    pids = set()
    for _ in range(times):
        with storage._connect() as conn:
            pids.add(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
    return pids


@pytest.mark.parametrize("example", ["dagster-postgres.yaml", "celery/dagster.yaml"])
def test_the_deploy_instance_loads_and_its_event_log_reuses_one_connection(
    example: str, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_url.replace("postgresql://", "postgresql+psycopg2://")
    shutil.copy(ROOT / "deploy" / example, tmp_path / "dagster.yaml")
    monkeypatch.setenv("ORDERLAKE_DAGSTER_PG_URL", url)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.event_log_storage, PooledPostgresEventLogStorage)
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_monitoring_enabled
        assert len(_backend_pids(instance.event_log_storage, 5)) == 1
    shipped = PostgresEventLogStorage(url)
    try:
        assert len(_backend_pids(shipped, 5)) == 5  # what the pool saves: a new backend for every batch
    finally:
        shipped.dispose()

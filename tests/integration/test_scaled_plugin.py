"""``make test-scaled``'s switch (tests/support/scaled.py), run on a four-test suite of its own: a lake partition
lands on the loopback S3 server and not in the data dir, Dagster instances get databases of their own on the
loopback PostgreSQL (one per ``ephemeral()``, one per home), dropped when the test ends, a child process started
with ``ORDERLAKE_DATA_DIR`` and ``DAGSTER_HOME`` writes to that same lake, budget and database, a test's own hang
ceiling is tripled, and a ``local_lake`` test is deselected and named with its reason. The small scaled check that
``make test`` runs."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg2
import pytest

from tests.support import services
from tests.support.services import S3Service

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]
INNER = """
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from assets.common.pg_event_log import PooledPostgresEventLogStorage
from pipeline.storage import lake, lakefs
from pipeline.storage.schemas import spec_for
from tests.support.lake_files import lake_paths


def test_lake_on_s3_and_dagster_on_postgres(tmp_path: Path) -> None:
    data = tmp_path / "data"
    lake.write_partition(data, "spot_orders", "main", date(2024, 1, 2), spec_for("spot_orders").schema.empty_table())
    assert not lakefs.location(data).is_local and not (data / "lake").exists()
    assert lake_paths(data) == ["spot_orders/account=main/date=2024-01-02/part-0.parquet"]
    first, second = dg.DagsterInstance.ephemeral(), dg.DagsterInstance.ephemeral()
    assert isinstance(first.event_log_storage, PooledPostgresEventLogStorage) and first.is_ephemeral
    first.create_run_for_job(dg.GraphDefinition("one").to_job())
    assert len(first.get_runs()) == 1 and second.get_runs() == []  # a database each
    home = tmp_path / "home"
    home.mkdir()
    urls = [dg.DagsterInstance.from_config(str(home)).run_storage.postgres_url for _ in range(2)]
    assert urls[0] == urls[1]  # the test and the CLI it calls share the home's database
    names = {u.rsplit("/", 1)[1] for u in (first.run_storage.postgres_url, second.run_storage.postgres_url, *urls)}
    Path({names_file!r}).write_text(json.dumps(sorted(names)))


CHILD = '''
from datetime import date
import dagster as dg
from pipeline.settings import Settings
from pipeline.storage import lake, lakefs
from pipeline.storage.schemas import spec_for
settings = Settings.from_env()
lakefs.configure(settings)
table = spec_for("spot_orders").schema.empty_table()
lake.write_partition(settings.data_dir, "spot_orders", "main", date(2024, 1, 3), table)
dg.DagsterInstance.get().create_run_for_job(dg.GraphDefinition("child").to_job())
print(settings.budget_url is not None)
'''


def test_a_child_process_gets_the_switch_through_its_environment(tmp_path: Path) -> None:
    data, home = tmp_path / "data", tmp_path / "home"
    env = {**os.environ, "ORDERLAKE_DATA_DIR": str(data), "DAGSTER_HOME": str(home)}
    child = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=False)
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.split() == ["True"]  # the PostgreSQL budget
    assert lake_paths(data) == ["spot_orders/account=main/date=2024-01-03/part-0.parquet"]
    assert not (data / "lake").exists()
    instance = dg.DagsterInstance.from_config(str(home))
    assert [run.job_name for run in instance.get_runs()] == ["child"]  # the home's database, in the child too
    Path({names_file!r} + ".child").write_text(json.dumps([instance.run_storage.postgres_url.rsplit("/", 1)[1]]))


@pytest.mark.timeout(40)
def test_its_own_hang_ceiling_is_scaled(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("timeout").args == (120,)


@pytest.mark.local_lake(reason="reads the local lake's files")
def test_only_local() -> None:
    raise AssertionError("deselected under make test-scaled")
"""


def test_the_switch_puts_lakes_on_s3_and_dagster_on_postgres(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, postgres_url: str, s3_service: S3Service
) -> None:
    names_file = pytester.path / "databases.json"
    pytester.makeconftest("from tests.support.services import postgres_url, s3_service  # noqa: F401")
    pytester.mkdir("integration")
    (pytester.path / "integration" / "test_inner.py").write_text(INNER.replace("{names_file!r}", repr(str(names_file))))
    # a process of its own: an in-process run would re-import Dagster's modules afterwards (pytester restores
    # sys.modules), registering their serializers twice
    for name, value in services._ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    result = pytester.runpytest_subprocess("-p", "tests.support.scaled", "-p", "no:cacheprovider", "integration")
    result.assert_outcomes(passed=3, deselected=1)
    result.stdout.fnmatch_lines(["*only meaningful on a local lake*", "*test_only_local: reads the local lake's files"])
    names = json.loads(Path(names_file).read_text())
    assert len(names) == 3  # two ephemeral instances, one home
    names += json.loads(Path(f"{names_file}.child").read_text())
    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (names,))
        assert cur.fetchall() == []  # dropped when the test ended
    conn.close()

"""``make test-scaled`` (``pytest -p tests.support.scaled``): the suite with every lake on the loopback S3 server,
the weight budget and Dagster's storage in the loopback PostgreSQL (deploy/services.sh).

Unit tests open no socket and stay local. Every data dir an integration or Dagster test uses gets its lake under
the test's own S3 prefix (``lakefs.location``) unless the test binds one itself, every Settings without a budget URL
gets the PostgreSQL store, and every Dagster instance its own database (tests/support/scaled_dagster.py). A child
process the test starts (``subprocess``) with ``ORDERLAKE_DATA_DIR`` or ``DAGSTER_HOME`` gets the same through the
variables and the dagster.yaml that production reads. Tests that only make sense on a local lake are marked
``local_lake`` and deselected here; docs/design/scale.md §The suite on S3 and PostgreSQL lists them.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from pipeline.settings import Secret, Settings
from pipeline.storage import lakefs
from tests.support.lake_files import lake_environment
from tests.support.scaled_dagster import PostgresInstances
from tests.support.services import postgres_admin_url

BUDGET_URL = "ORDERLAKE_BUDGET_URL"
LOCAL_ONLY = pytest.StashKey[dict[str, str]]()  # test id: why it only makes sense on a local lake
CEILING_FACTOR = 3  # a test's own hang ceiling (its timeout mark) under S3 and PostgreSQL


@pytest.fixture(scope="session")
def dagster_postgres() -> Iterator[PostgresInstances]:
    """This pytest process's Dagster databases (under xdist: one set per worker)."""
    instances = PostgresInstances(postgres_admin_url())
    try:
        yield instances
    finally:
        instances.close()


@pytest.fixture(autouse=True)
def lake_on_s3(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.path.parent.name == "unit":
        return  # the unit rung opens no socket
    s3_service = request.getfixturevalue("s3_service")
    postgres_url = request.getfixturevalue("postgres_url")
    access = lakefs.S3Access(s3_service.endpoint, s3_service.region, Secret(s3_service.key), Secret(s3_service.secret))
    shipped_location, shipped_configure = lakefs.location, lakefs.configure

    def location(data_dir: str | os.PathLike[str]) -> lakefs.LakeLocation:
        where = shipped_location(data_dir)
        if not where.is_local:
            return where
        digest = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:12]
        return lakefs.bind(data_dir, lakefs.from_url(f"{s3_service.lake_url}/{digest}", access))

    def configure(settings: Settings, data_dir: str | os.PathLike[str] | None = None) -> lakefs.LakeLocation:
        configured = shipped_configure(settings, data_dir)  # a lake URL of the test's own is bound as it says
        return configured if settings.lake_url else location(settings.data_dir if data_dir is None else data_dir)

    monkeypatch.setattr(lakefs, "location", location)
    monkeypatch.setattr(lakefs, "configure", configure)
    from_env = Settings.from_env.__func__  # type: ignore[attr-defined]

    def scaled_from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        settings = from_env(cls, env)
        if settings.budget_url:
            return settings
        monkeypatch.setenv(BUDGET_URL, postgres_url)  # what the resources' EnvVar reference resolves at run start
        return settings.replace(budget_url=Secret(postgres_url))

    monkeypatch.setattr(Settings, "from_env", classmethod(scaled_from_env))
    dagster_postgres = request.getfixturevalue("dagster_postgres")
    request.getfixturevalue("dagster_on_postgres")
    shipped_popen = subprocess.Popen.__init__

    def popen(self: subprocess.Popen, args: Any, *more: Any, **kw: Any) -> None:
        kw["env"] = child_environment(kw.get("env"), kw.get("cwd"), postgres_url, dagster_postgres)
        shipped_popen(self, args, *more, **kw)

    monkeypatch.setattr(subprocess.Popen, "__init__", popen)


def child_environment(
    env: Mapping[str, str] | None, cwd: Any, budget_url: str, dagster_postgres: PostgresInstances
) -> Mapping[str, str] | None:
    """A child's environment with the switch in the variables production reads: its data dir's lake (unless the
    test set a lake URL), the PostgreSQL budget (unless set), and its ``DAGSTER_HOME``'s database in the home's
    dagster.yaml. Another child (no ``ORDERLAKE_DATA_DIR``, no ``DAGSTER_HOME``) is left as it is."""
    given = os.environ if env is None else env
    data, home = given.get("ORDERLAKE_DATA_DIR"), given.get("DAGSTER_HOME")
    if not data and not home:
        return env
    here = Path(os.getcwd() if cwd is None else cwd)
    out = dict(given)
    if data:
        if not given.get("ORDERLAKE_LAKE_URL"):
            out |= lake_environment(here / data)
        out.setdefault(BUDGET_URL, budget_url)
    if home:
        dagster_postgres.name_storage(here / home)
    return out


@pytest.fixture
def dagster_on_postgres(dagster_postgres: PostgresInstances, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(dg.DagsterInstance, "ephemeral", staticmethod(dagster_postgres.ephemeral))
    monkeypatch.setattr(dg.DagsterInstance, "from_config", staticmethod(dagster_postgres.from_config))
    try:
        yield
    finally:
        dagster_postgres.end_test()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "local_lake(reason=...): only meaningful on a local lake; deselected here")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``local_lake`` (a local filesystem's behaviour, e.g. hard links) are deselected and listed with
    their reason at the end of the run: never a silent skip."""
    marked = {item.nodeid: marker for item in items if (marker := item.get_closest_marker("local_lake"))}
    local = {nodeid: marker.kwargs.get("reason", "") for nodeid, marker in marked.items()}
    if missing := [nodeid for nodeid, reason in local.items() if not reason]:
        raise pytest.UsageError(f"local_lake needs reason=...: {', '.join(missing)}")
    if local:
        config.hook.pytest_deselected(items=[item for item in items if item.nodeid in local])
        items[:] = [item for item in items if item.nodeid not in local]
    config.stash[LOCAL_ONLY] = local
    for item in items:  # a hang ceiling set for the local lake and SQLite, scaled to what S3 and PostgreSQL cost
        if (mark := item.get_closest_marker("timeout")) and (seconds := mark.kwargs.get("timeout", *mark.args[:1])):
            item.add_marker(pytest.mark.timeout(seconds * CEILING_FACTOR), append=False)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workeroutput"):  # an xdist worker: its list goes to the controller
        session.config.workeroutput["local_lake"] = session.config.stash.get(LOCAL_ONLY, {})


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    node.config.stash[LOCAL_ONLY] = node.config.stash.get(LOCAL_ONLY, {}) | node.workeroutput.get("local_lake", {})


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if local := config.stash.get(LOCAL_ONLY, {}):
        terminalreporter.section("deselected by make test-scaled: only meaningful on a local lake (local_lake)")
        for nodeid, reason in sorted(local.items()):
            terminalreporter.line(f"{nodeid}: {reason}")

"""Dagster on PostgreSQL for ``make test-scaled`` (tests/support/scaled.py): every instance a test creates, itself or
through orderlake, stores its runs, events and schedules in a database of its own on the loopback server.

``DagsterInstance.ephemeral()`` gets a fresh database (still an ephemeral instance: in-process launcher, no compute
logs); ``DagsterInstance.from_config(home)`` of a dagster.yaml without storage gets the database of that home, so a
test and the CLI it calls share one. The event log is deploy/dagster-postgres.yaml's (one pooled connection). Each
database is a copy of a template that holds Dagster's tables (made once per pytest process), and is dropped when
its test ends. A dagster.yaml that names its storage (deploy/dagster-postgres.yaml) is left as it is.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import yaml
from dagster._core.instance import InstanceRef, InstanceType
from dagster._core.launcher.sync_in_memory_run_launcher import SyncInMemoryRunLauncher
from dagster._core.run_coordinator import DefaultRunCoordinator
from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager
from dagster._core.storage.root import LocalArtifactStorage, TemporaryLocalArtifactStorage
from dagster_postgres import PostgresRunStorage, PostgresScheduleStorage

from assets.common.pg_event_log import PooledPostgresEventLogStorage

STORAGE_KEYS = ("storage", "run_storage", "event_log_storage", "schedule_storage")
STORAGES = (  # (dagster.yaml key, module, class): deploy/dagster-postgres.yaml's
    ("run_storage", "dagster_postgres.run_storage", "PostgresRunStorage"),
    ("event_log_storage", "assets.common.pg_event_log", "PooledPostgresEventLogStorage"),
    ("schedule_storage", "dagster_postgres.schedule_storage", "PostgresScheduleStorage"),
)


def dagster_url(url: str) -> str:
    """dagster-postgres needs the psycopg2 driver named (docs/design/scale.md §Dagster on PostgreSQL)."""
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


class PostgresInstances:
    """The databases of one pytest process: a template, and the copies the current test made."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._conn: Any = None
        self._template: str | None = None
        self._databases: list[str] = []
        self._instances: list[dg.DagsterInstance] = []
        self._homes: dict[Path, str] = {}

    def url(self, name: str) -> str:
        return dagster_url(urlunsplit(urlsplit(self.admin_url)._replace(path=f"/{name}")))

    def _execute(self, sql: str) -> None:
        if self._conn is None:
            import psycopg2

            self._conn = psycopg2.connect(self.admin_url)
            self._conn.autocommit = True
        with self._conn.cursor() as cur:
            cur.execute(sql)

    def _template_name(self) -> str:
        if self._template is None:
            name = f"orderlake_dgtpl_{uuid.uuid4().hex[:12]}"
            self._execute(f"CREATE DATABASE {name}")
            for storage in (PostgresRunStorage, PooledPostgresEventLogStorage, PostgresScheduleStorage):
                storage(self.url(name)).dispose()  # creates its tables; no connection may stay for the copies
            self._template = name
        return self._template

    def new_database(self) -> str:
        """A fresh copy of the template (its URL), dropped when the test ends."""
        name = f"orderlake_dg_{uuid.uuid4().hex[:12]}"
        self._execute(f"CREATE DATABASE {name} TEMPLATE {self._template_name()}")
        self._databases.append(name)
        return self.url(name)

    def ephemeral(
        self, tempdir: str | None = None, preload: Any = None, settings: dict | None = None
    ) -> dg.DagsterInstance:
        """``DagsterInstance.ephemeral`` with PostgreSQL storage instead of memory."""
        if preload:
            raise NotImplementedError("make test-scaled: DagsterInstance.ephemeral(preload=...) has no PostgreSQL form")
        url = self.new_database()
        instance = dg.DagsterInstance(
            instance_type=InstanceType.EPHEMERAL,
            local_artifact_storage=LocalArtifactStorage(tempdir) if tempdir else TemporaryLocalArtifactStorage(),
            run_storage=PostgresRunStorage(url, should_autocreate_tables=False),
            event_storage=PooledPostgresEventLogStorage(url, should_autocreate_tables=False),
            schedule_storage=PostgresScheduleStorage(url, should_autocreate_tables=False),
            compute_log_manager=NoOpComputeLogManager(),
            run_coordinator=DefaultRunCoordinator(),
            run_launcher=SyncInMemoryRunLauncher(),
            settings=settings,
        )
        self._instances.append(instance)
        return instance

    def _storage(self, home: Path) -> dict[str, Any]:
        """dagster.yaml's storage keys for the home's database (made on first use)."""
        home = home.resolve()
        if home not in self._homes:
            self._homes[home] = self.new_database()
        cfg = {"postgres_url": self._homes[home], "should_autocreate_tables": False}
        return {key: {"module": mod, "class": cls, "config": cfg} for key, mod, cls in STORAGES}

    def from_config(self, config_dir: str, config_filename: str = "dagster.yaml") -> dg.DagsterInstance:
        """``DagsterInstance.from_config`` with the home's own database when its dagster.yaml names no storage."""
        path = Path(config_dir) / config_filename
        config = (yaml.safe_load(path.read_text()) if path.is_file() else None) or {}
        overrides: dict[str, Any] = {}
        if not any(key in config for key in STORAGE_KEYS):
            overrides = self._storage(Path(config_dir))
        ref = InstanceRef.from_dir(config_dir, config_filename=config_filename, overrides=overrides)
        instance = dg.DagsterInstance.from_ref(ref)
        self._instances.append(instance)
        return instance

    def name_storage(self, home: Path) -> None:
        """Write the home's database into its dagster.yaml when that names no storage: what a child process started
        with ``DAGSTER_HOME=home`` reads (the switch does not reach its ``from_config``)."""
        path = home.resolve() / "dagster.yaml"
        config = (yaml.safe_load(path.read_text()) if path.is_file() else None) or {}
        if any(key in config for key in STORAGE_KEYS):
            return
        config |= self._storage(home)  # the database this test's own instances of that home use
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))

    def end_test(self) -> None:
        """Close the test's instances and drop their databases (FORCE: a connection left open is ended)."""
        instances, databases = self._instances, self._databases
        self._instances, self._databases, self._homes = [], [], {}
        for instance in instances:
            instance.dispose()
        for name in databases:
            self._execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def close(self) -> None:
        self.end_test()
        if self._template is not None:
            self._execute(f"DROP DATABASE IF EXISTS {self._template} WITH (FORCE)")
            self._template = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def database_text(instance: dg.DagsterInstance) -> str:
    """Every row of every table of the instance's PostgreSQL database, as text ('' when its runs are not in
    PostgreSQL, e.g. SQLite files in its home): what a grep for a secret must cover."""
    url = getattr(instance.run_storage, "postgres_url", None)
    if url is None:
        return ""
    import psycopg2

    parts: list[str] = []
    with psycopg2.connect(url.replace("+psycopg2", "", 1)) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
        for (table,) in cur.fetchall():
            cur.execute(f'SELECT CAST(t AS text) FROM "{table}" t')
            parts += [row[0] for row in cur.fetchall()]
    conn.close()
    return "\n".join(parts)

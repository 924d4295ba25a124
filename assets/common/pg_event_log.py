"""Dagster's PostgreSQL event log with one pooled connection per process (``deploy/dagster-postgres.yaml``).

dagster-postgres opens a new database connection for every statement batch (SQLAlchemy ``NullPool``), two per asset
event: a backend start and a password handshake each time, for every per-partition event of a backfill. This class
is the same storage with a small pool, so a run worker reuses its connection. Measured in bench/results.md, P5.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster._serdes import ConfigurableClassData
from dagster_postgres import PostgresEventLogStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config

POOL_SIZE = 1  # one connection kept per process: a run worker stores its events one after the other
MAX_OVERFLOW = 4  # more only while several threads of one process store at once
POOL_RECYCLE_S = 3600


class PooledPostgresEventLogStorage(PostgresEventLogStorage):
    """``PostgresEventLogStorage`` whose engine keeps its connection between events."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True, **kw: Any) -> None:
        super().__init__(postgres_url, should_autocreate_tables, **kw)
        self._engine.dispose()
        self._engine = create_pg_engine(
            self.postgres_url,
            self._token_provider,
            isolation_level="AUTOCOMMIT",
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
            pool_recycle=POOL_RECYCLE_S,
            pool_pre_ping=True,  # a connection the server closed (restart, idle timeout) is replaced, not used
        )

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PooledPostgresEventLogStorage:
        return cls(
            pg_url_from_config(config_value),
            config_value.get("should_autocreate_tables", True),
            inst_data=inst_data,
            token_provider=get_token_provider_from_config(config_value),
        )

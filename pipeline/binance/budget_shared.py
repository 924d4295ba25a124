"""Weight-budget stores that workers on several machines share: PostgreSQL and Redis (``ORDERLAKE_BUDGET_URL``).

Binance counts weight per egress IP, so every worker behind one IP must count into one place. PostgreSQL keeps a row
per budget key, changed in a transaction that holds the row's lock (``SELECT … FOR UPDATE``); a worker that dies
mid-change leaves nothing half-written, because its transaction rolls back. Redis keeps a string per key, changed
under a lock that expires if its holder dies. The client libraries come with the ``scale`` extra. Design:
docs/design/budget.md §Where the state lives.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pipeline.binance.budget_store import BudgetStore, decode, encode
from pipeline.errors import ConfigurationError

TABLE = "orderlake_weight_budget"
REDIS_PREFIX = "orderlake:budget:"
REDIS_LOCK_SECONDS = 30  # a holder that died releases the lock after this long; a change takes milliseconds
REDIS_LEARN_LOCK_SECONDS = 120  # learning the limits is one exchangeInfo request with its retries


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _missing(package: str) -> ConfigurationError:
    return ConfigurationError(
        f"ORDERLAKE_BUDGET_URL needs the Python package {package}; install orderlake with the `scale` extra "
        "(pip install 'orderlake[scale]') or unset ORDERLAKE_BUDGET_URL to keep the budget in local files"
    )


class PostgresStore:
    """A row per key in ``orderlake_weight_budget``; one connection per process (re-opened after a fork)."""

    def __init__(self, url: str) -> None:
        try:
            import psycopg2
        except ImportError:
            raise _missing("psycopg2") from None
        self._psycopg2 = psycopg2
        self.url = url
        self._lock = threading.Lock()
        self._learn = threading.Lock()
        self._conn: Any = None
        self._pid = 0
        with self._lock, self._transaction() as cur:
            # concurrent first starts would race on CREATE TABLE's catalog rows: serialize them
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (TABLE,))
            cur.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (key text PRIMARY KEY, state text NOT NULL)")

    def describe(self) -> str:
        return redacted(self.url)

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed or self._pid != os.getpid():
            try:
                self._conn = self._psycopg2.connect(self.url, connect_timeout=10, application_name="orderlake-budget")
            except self._psycopg2.OperationalError as exc:
                raise ConfigurationError(
                    f"cannot reach the budget store {self.describe()}: {str(exc).strip()}; check ORDERLAKE_BUDGET_URL"
                ) from None
            self._pid = os.getpid()
        return self._conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        conn = self._connection()
        try:
            with conn.cursor() as cur:
                yield cur
            conn.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise

    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[dict[str, Any]]:
        with self._lock, self._transaction() as cur:
            cur.execute(f"INSERT INTO {TABLE} (key, state) VALUES (%s, '{{}}') ON CONFLICT (key) DO NOTHING", (key,))
            cur.execute(f"SELECT state FROM {TABLE} WHERE key = %s FOR UPDATE", (key,))
            state = decode(cur.fetchone()[0], f"{self.describe()} key {key}")
            before = encode(state)
            yield state
            after = encode(state)
            if after != before:
                cur.execute(f"UPDATE {TABLE} SET state = %s WHERE key = %s", (after, key))

    @contextlib.contextmanager
    def serialized(self, key: str) -> Iterator[None]:
        with self._learn:
            with self._lock, self._transaction() as cur:
                cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"orderlake-learn:{key}",))
            try:
                yield
            finally:
                with self._lock, self._transaction() as cur:
                    cur.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"orderlake-learn:{key}",))


class RedisStore:
    """A string per key under ``orderlake:budget:``, changed under redis-py's token lock."""

    def __init__(self, url: str) -> None:
        try:
            import redis
        except ImportError:
            raise _missing("redis") from None
        self.url = url
        self._redis = redis
        self.client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
        self._lock = threading.Lock()
        try:
            self.client.ping()
        except redis.RedisError as exc:
            raise ConfigurationError(
                f"cannot reach the budget store {self.describe()}: {exc}; check ORDERLAKE_BUDGET_URL"
            ) from None

    def describe(self) -> str:
        return redacted(self.url)

    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[dict[str, Any]]:
        name = REDIS_PREFIX + key
        lock = self.client.lock(name + ":lock", timeout=REDIS_LOCK_SECONDS, sleep=0.002, blocking_timeout=None)
        with self._lock, lock:
            state = decode(self.client.get(name), f"{self.describe()} key {key}")
            before = encode(state)
            yield state
            after = encode(state)
            if after != before:
                self.client.set(name, after)

    @contextlib.contextmanager
    def serialized(self, key: str) -> Iterator[None]:
        with self.client.lock(REDIS_PREFIX + key + ":learn", timeout=REDIS_LEARN_LOCK_SECONDS, sleep=0.05):
            yield


def open_shared(url: str) -> BudgetStore:
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("postgres", "postgresql"):
        return PostgresStore(url)
    if scheme in ("redis", "rediss", "unix"):
        return RedisStore(url)
    raise ConfigurationError(
        f"ORDERLAKE_BUDGET_URL={redacted(url)!r} is not a postgresql:// or redis:// URL; unset it for local files"
    )

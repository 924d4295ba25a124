"""The loopback services of the scaled setup (deploy/services.sh): PostgreSQL, an S3-compatible server, Redis.

`deploy/services.sh start` prints their URLs as ORDERLAKE_TEST_* variables; they are read here once, at import
(the autouse fixture then clears every ORDERLAKE_* variable). A test that needs a service takes its fixture: without
the service it is skipped on a developer's machine, but FAILS when ORDERLAKE_TEST_SERVICES=required, which .ci/run
sets after starting them, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import pytest

_ENV = {k: v for k, v in os.environ.items() if k.startswith("ORDERLAKE_TEST_")}
REQUIRED = _ENV.get("ORDERLAKE_TEST_SERVICES", "").strip().lower() == "required"


@dataclass(frozen=True)
class S3Service:
    endpoint: str
    key: str
    secret: str
    bucket: str
    prefix: str  # this test's own key prefix: tests share one bucket (SeaweedFS gives each bucket its own volumes)
    region: str = "us-east-1"

    @property
    def lake_url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def env(self) -> dict[str, str]:
        """The variables that point orderlake's lake at this test's prefix on this server."""
        return {
            "ORDERLAKE_LAKE_URL": self.lake_url,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_REGION": self.region,
        }


def _need(variable: str, service: str) -> str:
    value = _ENV.get(variable, "").strip()
    if value:
        return value
    message = f'{service} is not running ({variable} unset): start it with `eval "$(deploy/services.sh start)"`'
    if REQUIRED:
        pytest.fail(message + " — ORDERLAKE_TEST_SERVICES=required, so this is a failure, not a skip")
    pytest.skip(message)


def postgres_admin_url() -> str:
    return _need("ORDERLAKE_TEST_POSTGRES_URL", "PostgreSQL")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the loopback server, dropped afterwards."""
    import psycopg2

    admin = postgres_admin_url()
    name = f"orderlake_test_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.close()


# Redis databases the tests may use: 0 and the demo's broker (pipeline.scale.demo.CELERY_DB = 3) are left alone
TEST_REDIS_DBS = (4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A loopback Redis database of this test's own, flushed before and after.

    Under pytest-xdist every worker takes its own database, and holds a lock on it for the test, so that a flush
    never hits another worker's test (more workers than databases then wait for each other)."""
    import fcntl
    import tempfile
    from pathlib import Path

    import redis

    url = _need("ORDERLAKE_TEST_REDIS_URL", "Redis")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    db = TEST_REDIS_DBS[int(worker) % len(TEST_REDIS_DBS)] if worker.isdigit() else TEST_REDIS_DBS[0]
    url = urlunsplit(urlsplit(url)._replace(path=f"/{db}"))
    lock_path = Path(tempfile.gettempdir()) / f"orderlake-test-redis-{os.getuid()}-{db}.lock"
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        client = redis.Redis.from_url(url)
        client.flushdb()
        try:
            yield url
        finally:
            client.flushdb()
            client.close()


@pytest.fixture
def s3_service() -> S3Service:
    """The loopback S3 server, its test bucket and a fresh key prefix for this test."""
    import pyarrow.fs as pafs

    service = S3Service(
        _need("ORDERLAKE_TEST_S3_ENDPOINT", "The S3 server"),
        _ENV.get("ORDERLAKE_TEST_S3_KEY", ""),
        _ENV.get("ORDERLAKE_TEST_S3_SECRET", ""),
        "orderlake-test",
        f"t-{uuid.uuid4().hex[:12]}/lake",
    )
    fs = pafs.S3FileSystem(
        access_key=service.key,
        secret_key=service.secret,
        endpoint_override=service.endpoint,
        scheme=urlsplit(service.endpoint).scheme,
        region=service.region,
        allow_bucket_creation=True,
    )
    fs.create_dir(service.bucket)
    return service

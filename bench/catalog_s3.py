"""``python -m bench.catalog_s3 [--accounts 10] [--days 30]``: the catalog build over a lake on S3, side by side.

Writes accounts × days spot partitions under a fresh prefix of an S3 server (``AWS_*`` variables: the loopback one of
``deploy/services.sh``). Then builds the catalog, and runs a one-day query in a fresh session, alternating
how DuckDB reads the objects: httpfs with a session secret (what orderlake does) and an fsspec ``s3fs`` filesystem
registered on the connection (what it did before; docs/design/scale.md §DuckDB reads the lake through httpfs).
Prints each time and httpfs's requests by method (DuckDB's own HTTP log). Figures go to docs/, not into code.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bench.p4_query import day_orders
from pipeline.settings import Settings
from pipeline.storage import duckdb_s3, lake, lakefs
from pipeline.warehouse.catalog import CATALOG_FILE, build_catalog

ONE_DAY = "SELECT count(*) FROM spot_order_versions WHERE date = DATE '2024-01-15'"


def fill(data: Path, accounts: int, days: int) -> int:
    rng = np.random.default_rng(15)
    first = date(2024, 1, 1)
    jobs = []
    with ThreadPoolExecutor(8) as pool:
        for a in range(accounts):
            account = f"acct-{a:03d}"
            for d in range(days):
                tbl = day_orders(rng, first + timedelta(days=d), (a * days + d) * 100, 20)
                tbl = tbl.set_column(0, "account", pa.array([account] * tbl.num_rows))
                jobs.append(pool.submit(lake.write_partition, data, "spot_orders", account, first + timedelta(d), tbl))
        for job in jobs:
            job.result()
    return len(jobs)


def s3fs_register(self: lakefs.LakeLocation, con: Any) -> None:
    """The baseline: the connection reads through s3fs (DuckDB's fsspec bridge)."""
    con.register_filesystem(self.s3.fsspec())


HTTPFS = lakefs.LakeLocation.register  # what orderlake does


def httpfs_uncached(self: lakefs.LakeLocation, con: Any) -> None:
    """httpfs without its HTTP metadata cache: a HEAD each time a query opens an object."""
    HTTPFS(self, con)
    con.execute("SET enable_http_metadata_cache = false")


def timed(
    data: Path, register: Callable[[lakefs.LakeLocation, Any], None], work: Callable[[Path], object]
) -> tuple[float, Counter[str], object]:
    """``work(data)`` with ``register`` as every connection's setup: its seconds, httpfs's requests per method (from
    DuckDB's HTTP log) and its result."""
    logs = Path(tempfile.mkdtemp(prefix="catalog-s3-log."))
    attach = duckdb_s3.attach

    def logged(con: Any, access: lakefs.S3Access, scope: str) -> None:
        con.execute(f"CALL enable_logging('HTTP', storage = 'file', storage_path = '{logs.as_posix()}')")
        attach(con, access, scope)

    original = lakefs.LakeLocation.register
    lakefs.LakeLocation.register = register  # type: ignore[method-assign]
    duckdb_s3.attach = logged  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        result = work(data)
        seconds = time.perf_counter() - started
    finally:
        lakefs.LakeLocation.register = original  # type: ignore[method-assign]
        duckdb_s3.attach = attach  # type: ignore[assignment]
    methods: Counter[str] = Counter()
    entries = logs / "duckdb_log_entries.csv"
    if entries.exists():
        for line in entries.read_text().splitlines():
            for method in ("HEAD", "GET", "PUT", "POST"):
                if f"'type': {method}," in line:
                    methods[method] += 1
    return seconds, methods, result


def build(data: Path) -> str:
    return f"{build_catalog(data).views['spot_orders']:,} rows"


def one_day(data: Path) -> str:
    """What `orderlake sql` does for a one-day question: a fresh session over the catalog."""
    con = lakefs.connect_catalog(data / CATALOG_FILE)
    try:
        return f"{con.execute(ONE_DAY).fetchall()[0][0]:,} rows"
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.catalog_s3", description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=10)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2, help="runs per variant, alternating")
    ap.add_argument("--bucket", default="orderlake-test", help="an existing bucket (the tests' one by default)")
    ap.add_argument("--variants", default="httpfs,uncached,s3fs", help="which of httpfs, uncached, s3fs to run")
    args = ap.parse_args(argv)
    base = Settings.from_env()  # the object store: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
    if not (base.aws_endpoint_url and base.aws_access_key_id):
        raise SystemExit(
            'the loopback S3 server: eval "$(deploy/services.sh start)"; AWS_ENDPOINT_URL=$ORDERLAKE_TEST_S3_ENDPOINT '
            "AWS_ACCESS_KEY_ID=$ORDERLAKE_TEST_S3_KEY AWS_SECRET_ACCESS_KEY=$ORDERLAKE_TEST_S3_SECRET python -m "
            "bench.catalog_s3"
        )
    data = Path(tempfile.mkdtemp(prefix="catalog-s3.")) / "data"
    lake_url = f"s3://{args.bucket}/bench-{uuid.uuid4().hex[:10]}/lake"
    settings = base.replace(data_dir=data, lake_url=lake_url)
    lakefs.configure(settings)
    partitions = fill(data, args.accounts, args.days)
    print(f"{partitions} partitions of spot_orders on {settings.lake_url}")
    known = {"httpfs": HTTPFS, "uncached": httpfs_uncached, "s3fs": s3fs_register}
    variants = {name: known[name] for name in args.variants.split(",")}
    for label, work in (("catalog build", build), ("one-day query, fresh session", one_day)):
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        for r in range(args.rounds):
            for name in list(variants) if r % 2 == 0 else reversed(variants):
                took, methods, shown = timed(data, variants[name], work)
                seconds[name].append(took)
                requests = ", ".join(f"{m} {n:,}" for m, n in sorted(methods.items())) or "not logged (not httpfs)"
                print(f"{label}, round {r + 1}, {name:6s} {took:7.2f} s  {shown}  httpfs requests: {requests}")
        median = {name: statistics.median(v) for name, v in seconds.items()}
        shown = ", ".join(f"{name} {m:.2f} s ({m / median['httpfs']:.1f}× httpfs)" for name, m in median.items())
        print(f"{label}, median: {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

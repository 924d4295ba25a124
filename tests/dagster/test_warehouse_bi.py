"""The BI read path: every view read through SQLAlchemy and the `bi` extra's DuckDB dialect, READ-ONLY, while
another PROCESS keeps rewriting partitions and rebuilding/swapping the catalog.

What BI tools do: Superset/Metabase/Tableau open a connection per query or per session and close it; a long-lived
read-only connection keeps seeing the catalog file it opened (the old inode) until it reconnects, which is still a
complete catalog. The reader here reconnects every iteration (engine per iteration, disposed after), like a tool that
opens a session per dashboard refresh. The writer must be another process: inside one process DuckDB caches the
database instance per path, so the file swap would not be exercised.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest
import sqlalchemy

from pipeline.storage import lakefs
from pipeline.storage.lakefs import LakeLocation
from pipeline.warehouse.catalog import build_catalog
from pipeline.warehouse.views import VIEWS as REGISTERED
from tests.support.lake_files import lake_environment
from tests.support.warehouse import BI_DAYS, BI_STATES, bi_rows, bi_writer, futures_row, write

# The reader stops on progress, not on time: enough reads, rewrites and swaps, and at least two totals seen.
# The ceiling only ends a hung run; a loaded machine takes longer, it does not fail.
MIN_READS, MIN_REWRITES, MIN_SWAPS, CEILING_SECONDS = 10, 10, 5, 600.0
VIEWS = tuple(v.name for v in REGISTERED)
N_DAYS = len(BI_DAYS)
CONSISTENT_TOTALS = {N_DAYS * BI_STATES[0] + k * (BI_STATES[1] - BI_STATES[0]) for k in range(N_DAYS + 1)}
SUM_FOR = {n: n * (n + 1) // 2 for n in BI_STATES}


def _read_everything(url: str, lake: LakeLocation) -> dict[str, object]:
    engine = sqlalchemy.create_engine(url, connect_args={"read_only": True}, poolclass=sqlalchemy.pool.NullPool)
    # a lake on S3: the session loads httpfs and creates its own secret, as a BI tool's connection setup would
    sqlalchemy.event.listen(engine, "connect", lambda dbapi_con, _: lake.register(dbapi_con))
    try:
        with engine.connect() as conn:
            seen: dict[str, object] = {}
            for view in VIEWS:
                seen[view] = conn.execute(sqlalchemy.text(f"SELECT count(*) FROM {view}")).scalar_one()
            seen["per_day"] = conn.execute(
                sqlalchemy.text("SELECT date, count(*), sum(price) FROM spot_orders GROUP BY date")
            ).fetchall()
            return seen
    finally:
        engine.dispose()


@pytest.mark.slow
def test_bi_reads_stay_consistent_during_rewrites_and_swaps(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for day in BI_DAYS:
        write(data, "spot_orders", "main", day, bi_rows(day, BI_STATES[0]))
        write(data, "futures_orders", "main", day, [futures_row(day.day, time=f"{day.isoformat()}T01:00:00")])
    catalog = build_catalog(data).path
    url = f"duckdb:///{catalog.as_posix()}"  # duckdb:////abs/path/warehouse.duckdb

    ctx = mp.get_context("spawn")
    stop, rewrites, swaps = ctx.Event(), ctx.Value("i", 0), ctx.Value("i", 0)
    writer = ctx.Process(target=bi_writer, args=(str(data), lake_environment(data), stop, rewrites, swaps), daemon=True)
    writer.start()
    errors: list[str] = []
    totals: set[int] = set()
    iterations = 0
    try:
        ceiling = time.monotonic() + CEILING_SECONDS
        while rewrites.value < 2 and time.monotonic() < ceiling:  # the spawned writer is importing
            time.sleep(0.05)

        def enough() -> bool:
            return (
                iterations >= MIN_READS
                and rewrites.value >= MIN_REWRITES
                and swaps.value >= MIN_SWAPS
                and len(totals) >= 2
            )

        while not errors and not enough() and time.monotonic() < ceiling:
            try:
                seen = _read_everything(url, lakefs.location(data))
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
                continue
            iterations += 1
            totals.add(seen["spot_orders"])
            if seen["spot_orders"] not in CONSISTENT_TOTALS or seen["futures_orders"] != N_DAYS:
                errors.append(f"inconsistent counts {seen}")
            for day, count, price_sum in seen["per_day"]:
                if count not in BI_STATES or price_sum != SUM_FOR[count]:
                    errors.append(f"torn partition {day}: {count} rows, sum {price_sum}")
    finally:
        stop.set()
        writer.join(10)
        if writer.is_alive():
            writer.terminate()
    assert writer.exitcode == 0
    assert not errors, errors[:5]
    assert iterations >= MIN_READS
    assert rewrites.value >= MIN_REWRITES and swaps.value >= MIN_SWAPS, (rewrites.value, swaps.value)
    assert len(totals) >= 2  # the reader really saw the data change under it


@pytest.mark.slow
def test_bi_reads_stay_consistent_during_real_backfills(tmp_path: Path, monkeypatch) -> None:
    """The writer is `orderlake backfill` itself (another process, against the sandbox), three ranges in a row,
    each ending with a catalog swap; every read must see one of the complete states, never a partial one."""
    import os
    import subprocess
    import sys
    from datetime import UTC, datetime, timedelta

    from pipeline.sandbox.testing import start_sandbox
    from tests.support.assets import sandbox_settings

    data = tmp_path / "data"
    end = datetime.now(UTC).date() - timedelta(days=1)
    ranges = [(end - timedelta(days=d + 4), end - timedelta(days=d)) for d in (10, 5, 0)]
    with start_sandbox(
        listed_symbols=40, active_symbols=4, history_days=15, busy_day_orders=1200, time_scale=60.0
    ) as sx:
        env = {**os.environ, **sandbox_settings(monkeypatch, sx, data).environment()}
        build_catalog(data)  # an empty catalog exists before the first backfill, as after `make run` on day one
        url = f"duckdb:///{(data / 'warehouse.duckdb').as_posix()}"
        script = "; ".join(
            f"main(['backfill', '--start', '{a}', '--end', '{b}', '--select', 'spot', '--quiet'])" for a, b in ranges
        )
        writer = subprocess.Popen(
            [sys.executable, "-c", f"from assets.cli import main; {script}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        seen: list[int] = []
        errors: list[str] = []
        while writer.poll() is None:
            try:
                counts = _read_everything(url, lakefs.location(data))
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
                continue
            seen.append(counts["spot_orders"])
        out, err = writer.communicate()
        assert writer.returncode == 0, err[-2000:]
        final = _read_everything(url, lakefs.location(data))["spot_orders"]
    assert not errors, errors[:5]
    assert out.count("done") == 3
    # the states a reader may see: the empty catalog and the catalog after each backfill, in that order
    assert seen == sorted(seen) and seen[0] == 0 and seen[-1] <= final and len(set(seen)) >= 2

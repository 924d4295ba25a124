"""`make run` (orderlake demo): the whole pipeline offline (orders, order lists, trades and income of every market),
twice; the second run changes no row and spends no id."""

import argparse
import hashlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from assets.cli import main
from assets.cli.demo import run_demo
from pipeline.exports.ledger import ExportLedger
from pipeline.settings import Settings
from tests.support.lake_files import lake_duckdb, lake_glob

HISTORY = (  # spot_open_orders is a snapshot
    "spot_orders",
    "spot_order_lists",
    "futures_orders",
    "pm_um_orders",
    "spot_trades",
    "futures_trades",
    "pm_um_trades",
    "futures_income",
    "pm_um_income",
)


def _lake_digest(data: Path) -> dict[str, tuple[int, str]]:
    """Rows and a digest of every value (ingested_at included) per lake table."""
    out = {}
    with lake_duckdb(data) as con:
        for table in HISTORY:
            glob = lake_glob(data, table)
            rows = con.execute(f"SELECT * FROM read_parquet('{glob}', union_by_name = true) ORDER BY ALL").fetchall()
            out[table] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return out


@pytest.mark.slow
def test_make_run_twice(tmp_path: Path, capsys) -> None:
    today = datetime.now(UTC).date()  # both runs on it: a second run on a later day rightly backfills the new day too
    settings = Settings(data_dir=tmp_path / "data")
    data = tmp_path / "data" / "demo"  # apart from a real account's data dir
    args = argparse.Namespace(spot_days=8, export_days=20)
    assert run_demo(args, settings, today) == 0
    assert "BINANCE_API_KEY" not in os.environ  # the sandbox's key was exported for the runs only
    first = capsys.readouterr().out
    assert "spot_orders" in first and "pm_um_orders" in first and "Largest spot fills" in first
    assert re.search(r"spot weight spent: \d+; trades weight: \d+; futures orders REST weight: \d+;", first)
    assert "export quota usdm/order" in first
    digest = _lake_digest(data)
    assert all(digest[t][0] > 0 for t in HISTORY)
    ids = len(ExportLedger(data).entries())
    assert ids == 2  # one per order endpoint for 20 days; REST serves their trades and income whole

    assert run_demo(args, settings, today) == 0
    capsys.readouterr()
    after = _lake_digest(data)
    assert after == digest  # not a single value changed
    assert len(ExportLedger(data).entries()) == ids  # no new download id for a range already exported
    anchor = json.loads((data / "state" / "sandbox_demo.json").read_text())["now_ms"]
    assert anchor % 86_400_000 == 0  # the sandbox account is anchored to a UTC midnight

    demo = Settings.from_env(dict(line.split("=", 1) for line in (data / "demo.env").read_text().splitlines()))
    assert demo.data_dir == data and demo.dagster_home == data / "dagster"
    assert main(["status"], demo) == 0
    report = capsys.readouterr().out
    assert "delisted pair" in report and "archived" in report
    # the demo's own range, whole: no gap, nothing missing before the first partition of any table
    assert "before the first partition" not in report and "gaps: none" in report
    assert all(line.strip() == "gaps: none" for line in report.splitlines() if line.strip().startswith("gaps:"))
    assert main(["sql", "SELECT count(*) AS n FROM orders"], demo) == 0
    assert "n" in capsys.readouterr().out

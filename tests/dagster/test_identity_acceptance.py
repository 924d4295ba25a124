"""Accounts never mix: `make run`, then the README's real-account commands against a second exchange with another
uid standing in for Binance. The real account's lake equals its truth with no demo row in it and every export
it needs requested; the real key pointed at the demo's data dir is refused in seconds, naming both identities; with
identity.json (and the lake) deleted there, the demo's ledger, index and REST state still mark none of its days done."""

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from assets.cli import main
from assets.cli.demo import run_demo
from pipeline import identity
from pipeline.exports.ledger import ExportLedger
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.testing import start_sandbox
from pipeline.settings import Settings
from pipeline.times import DAY_MS
from tests.support.assets import lake_rows, truth_spot_orders
from tests.support.assets import sandbox_settings as pointed_at
from tests.support.crash import futures_truth
from tests.support.exports import EXPORT_SANDBOX, FROM_EXPORT
from tests.support.lake_files import lake_paths, remove_lake
from tests.support.quick import within

REAL_UID = 987_654_321
DAYS = 6


@pytest.mark.slow
def test_demo_then_a_real_account_never_mix(tmp_path, monkeypatch, capsys) -> None:
    data = tmp_path / "data"  # a fresh clone's default ORDERLAKE_DATA_DIR
    assert run_demo(argparse.Namespace(spot_days=DAYS, export_days=DAYS), Settings(data_dir=data)) == 0
    assert "set -a; . " in capsys.readouterr().out
    demo = data / "demo"
    assert lake_rows(demo, "spot_orders") and not lake_paths(data)
    assert identity.recorded(demo, "main").uid == SandboxConfig().uid

    end = datetime.now(UTC).date() - timedelta(days=1)
    start = end - timedelta(days=DAYS - 1)
    shape = {**EXPORT_SANDBOX, "seed": 11, "uid": REAL_UID, "history_days": 20, "delisted_symbol": False}
    with start_sandbox(**shape) as sx:
        settings = pointed_at(monkeypatch, sx, data).replace(start_date=start)
        for select in ("spot", "exports"):
            argv = ["backfill", "--start", start.isoformat(), "--end", end.isoformat(), "--select", select, "--quiet"]
            assert main(argv, settings) == 0, capsys.readouterr().err
        truth = sx.truth()
        spot = lake_rows(data, "spot_orders")
        assert spot == truth_spot_orders(truth, start, end) and spot  # no demo row, nothing missed
        for market, table in (("usdm", "futures_orders"), ("pm_um", "pm_um_orders")):
            got = sorted(
                ({k: r[k] for k in FROM_EXPORT} for r in lake_rows(data, table)),
                key=lambda r: (r["symbol"], r["order_id"]),
            )
            assert got == futures_truth(truth, market, start, end) and got
        requested = {(e.market, e.download_id is not None) for e in ExportLedger(data).entries()}
        assert requested == {("usdm", True), ("pm_um", True)}  # every export this account needs was asked for
        assert _exported_days(data) == {"usdm": DAYS, "pm_um": DAYS}  # ... over every day of the range
        assert sx.stats()["export_ids_created"] == {"usdm": 1, "pm_um": 1}
        assert identity.recorded(data, "main").uid == REAL_UID
        capsys.readouterr()

        # the real key pointed at the demo's data dir: refused before any order request, naming both accounts
        before = dict(sx.stats()["by_endpoint"])
        argv = ["backfill", "--start", start.isoformat(), "--end", end.isoformat(), "--quiet"]
        with within(monkeypatch):  # "refuses in under 5 s", on any machine
            assert main(argv, settings.replace(data_dir=demo)) == 1
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert f"uid {SandboxConfig().uid}" in last and f"uid {REAL_UID}" in last, last
        assert f"ORDERLAKE_ACCOUNT=uid{REAL_UID}" in last
        sent = {p for p, n in sx.stats()["by_endpoint"].items() if n != before.get(p, 0)}
        assert not any("allOrders" in p or "asyn" in p for p in sent), sent
        capsys.readouterr()

        # identity.json and the demo's lake deleted, its state kept: the demo's ledger, symbol index and futures
        # REST state are keyed by the demo's identity, so the real account finds none of its days done
        identity.identity_path(demo).unlink()
        remove_lake(demo)
        demo_ledger = ExportLedger(demo).entries()
        assert {e.market for e in demo_ledger if e.download_id} == {"usdm", "pm_um"}  # they covered these days
        for select in ("spot", "exports"):
            argv = ["backfill", "--start", start.isoformat(), "--end", end.isoformat(), "--select", select, "--quiet"]
            assert main(argv, settings.replace(data_dir=demo)) == 0, capsys.readouterr().err
        assert lake_rows(demo, "spot_orders") == truth_spot_orders(truth, start, end)
        for market, table in (("usdm", "futures_orders"), ("pm_um", "pm_um_orders")):
            got = sorted(
                ({k: r[k] for k in FROM_EXPORT} for r in lake_rows(demo, table)),
                key=lambda r: (r["symbol"], r["order_id"]),
            )
            assert got == futures_truth(truth, market, start, end)
        assert sx.stats()["export_ids_created"] == {"usdm": 2, "pm_um": 2}  # every export requested again
        mine = ExportLedger(demo).entries(account="main")
        assert {e.identity for e in mine} == {identity.owner(demo, "main")} and len(mine) == 2
        assert _exported_days(demo) == {"usdm": DAYS, "pm_um": DAYS}


def _exported_days(data) -> dict[str, int]:
    """Per market, how many days the account's order exports with a download id cover."""
    entries = [e for e in ExportLedger(data).entries(account="main", kind="order") if e.download_id]
    return {m: sum((e.end_ms - e.start_ms + 1) // DAY_MS for e in entries if e.market == m) for m in ("usdm", "pm_um")}

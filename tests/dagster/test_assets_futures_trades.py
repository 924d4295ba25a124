"""USDⓈ-M and PM trades and income through Dagster and `orderlake backfill --select trades|income` against the
sandbox: the lake equals the truth on the days REST serves, and the checks pass but the reconciliation's, which
reports the export row REST contradicts."""

from datetime import timedelta
from decimal import Decimal

import dagster as dg
import pytest

from assets.cli import main
from assets.definitions import build_definitions
from pipeline.sandbox.testing import start_sandbox
from pipeline.times import DAY_MS, day_of, day_start_ms
from tests.support.assets import lake_rows, partition_days, sandbox_settings
from tests.support.futures_lake import store_as_export, store_truth_orders


@pytest.fixture(scope="module")
def sandbox():
    with start_sandbox(listed_symbols=20, history_days=3, futures_history_days=40, time_scale=60.0) as sx:
        yield sx


def test_cli_backfill_of_futures_trades_and_income(sandbox, tmp_path, monkeypatch) -> None:
    data = tmp_path / "data"
    settings = sandbox_settings(monkeypatch, sandbox, data)
    truth = sandbox.truth()
    for market in ("usdm", "pm_um"):
        store_truth_orders(data, truth, market)
    end = day_of(sandbox.exchange.clock.market()) - timedelta(days=1)  # its day, however late this test runs
    start = end - timedelta(days=29)
    argv = ["backfill", "--start", start.isoformat(), "--end", end.isoformat(), "--quiet"]
    assert main([*argv, "--select", "income"], settings) == 0
    assert main([*argv, "--select", "trades"], settings) == 0
    lo, hi = day_start_ms(start), day_start_ms(end) + DAY_MS
    for market, trades, income in (
        ("usdm", "futures_trades", "futures_income"),
        ("pm_um", "pm_um_trades", "pm_um_income"),
    ):
        want = sorted((t["symbol"], t["id"]) for t in truth[f"{market}_trades"] if lo <= t["time"] < hi)
        assert sorted((r["symbol"], r["trade_id"]) for r in lake_rows(data, trades)) == want
        want = sorted(
            (r["incomeType"], r["tranId"], r["asset"]) for r in truth[f"{market}_income"] if lo <= r["time"] < hi
        )
        assert sorted((r["income_type"], r["tran_id"], r["asset"]) for r in lake_rows(data, income)) == want
        assert partition_days(data, income) == [start + timedelta(days=i) for i in range(30)]


def test_trades_asset_reports_its_checks(sandbox, tmp_path, monkeypatch) -> None:
    data = tmp_path / "data"
    settings = sandbox_settings(monkeypatch, sandbox, data)
    truth = sandbox.truth()
    store_truth_orders(data, truth, "usdm")
    day = day_of(sandbox.exchange.clock.market()) - timedelta(days=2)
    exported = [dict(t) for t in truth["usdm_trades"] if day_start_ms(day) <= t["time"] < day_start_ms(day) + DAY_MS]
    exported[-1]["price"] = str(Decimal(exported[-1]["price"]) + 1)
    store_as_export(data, "futures_trades", exported, "usdm")
    result = (
        build_definitions(settings)
        .resolve_job_def("futures_trades_backfill")
        .execute_in_process(instance=dg.DagsterInstance.ephemeral(), partition_key=day.isoformat())
    )
    assert result.success
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in (ev.event_specific_data for ev in result.all_events if ev.event_type_value == "ASSET_CHECK_EVALUATION")
    }
    assert evaluations[("futures_trades", "trades_add_up_to_orders")].passed
    assert evaluations[("futures_trades", "unique_symbol_trade_id")].passed
    reconciled = evaluations[("futures_trades", "rest_equals_export")]
    assert not reconciled.passed and reconciled.metadata["trades_compared"].value == len(exported) > 0
    wrong = [(m["trade_id"], m["column"]) for m in reconciled.metadata["mismatches"].value]
    assert wrong == [(str(exported[-1]["id"]), "price")]

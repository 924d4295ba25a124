"""Spot through Dagster against the sandbox: a 60-day backfill equals the truth exactly and is cheap.

The acceptance account of the spot issue: about 300 listed symbols, 12 active, a delisted pair given by config,
a day with more than 2500 orders on one symbol, and orders updated across days. Weight is the SANDBOX's count
(what Binance would charge), discovery included.
"""

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from assets.cli import main
from assets.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from assets.definitions import build_definitions
from pipeline.binance.facts import SPOT_WEIGHTS
from pipeline.sandbox.testing import start_sandbox
from pipeline.settings import Settings
from pipeline.storage import lake
from pipeline.storage.lakefs import connect_catalog
from pipeline.storage.schemas import spot_order_lists
from pipeline.times import day_of, day_start_ms, day_window
from tests.support.assets import lake_rows, partition_days, sandbox_settings, truth_spot_orders
from tests.support.lake_files import lake_paths

DAYS = 60
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sandbox():
    with start_sandbox(
        listed_symbols=300, active_symbols=12, history_days=DAYS, busy_day_orders=2500, time_scale=60.0
    ) as sx:
        yield sx


@pytest.fixture
def window(sandbox) -> tuple[date, date]:
    end = day_of(sandbox.exchange.clock.market()) - timedelta(days=1)  # its day, however late this test runs
    return end - timedelta(days=DAYS - 1), end


def _settings(monkeypatch, sx, data: Path, **changes) -> Settings:
    return sandbox_settings(monkeypatch, sx, data, spot_symbols=sx.truth()["delisted"], **changes)


def _truth_lists(truth: dict, start: date, end: date) -> list[dict]:
    from pipeline.times import day_start_ms, day_window

    lo, hi = day_start_ms(start), day_window(end)[1]
    rows = [r for r in truth["spot_order_lists"] if lo <= r["transactionTime"] <= hi]
    table = spot_order_lists.from_api(rows, account="main", source="x", ingested_at=0)
    return sorted(
        ({k: v for k, v in r.items() if k not in ("ingested_at", "source")} for r in table.to_pylist()),
        key=lambda r: r["order_list_id"],
    )


def test_cli_backfill_equals_truth_and_costs_little(sandbox, window, tmp_path, monkeypatch, capsys) -> None:
    data = tmp_path / "data"
    settings = _settings(monkeypatch, sandbox, data)
    start, end = window
    truth = sandbox.truth()
    assert max(r["updateTime"] - r["time"] for r in truth["spot_orders"]) > 86_400_000  # updated on a later day
    before = sandbox.stats()["weight"].get("spot", 0)

    assert (
        main(
            ["backfill", "--start", start.isoformat(), "--end", end.isoformat(), "--select", "spot", "--quiet"],
            settings,
        )
        == 0
    )

    spent = sandbox.stats()["weight"]["spot"] - before
    assert lake_rows(data, "spot_orders") == truth_spot_orders(truth, start, end)  # every order, every decimal
    assert lake_rows(data, "spot_order_lists") == _truth_lists(truth, start, end)
    days = [start + timedelta(days=i) for i in range(DAYS)]
    assert partition_days(data, "spot_orders") == days  # empty days are written too: coverage is known
    with connect_catalog(data / "warehouse.duckdb") as con:  # the catalog the backfill built
        views = {
            v: con.execute(f"SELECT count(*) FROM {v}").fetchone()[0]
            for v in ("spot_orders", "spot_order_versions", "spot_order_lists")
        }
        by_market = dict(con.execute("SELECT market, count(*) FROM orders GROUP BY market").fetchall())
    want = len(truth_spot_orders(truth, start, end))
    assert views == {
        "spot_orders": want,
        "spot_order_versions": want,
        "spot_order_lists": len(_truth_lists(truth, start, end)),
    }
    assert by_market == {"spot": want}
    index = json.loads((data / "state" / "spot_symbols.json").read_text())["accounts"]["main"]
    probe = index["full_probe_weight"]
    run = spent - probe  # the spot_orders step: what the backfill itself costs once the account is known
    active = len(truth["active"])
    naive_active = active * DAYS * SPOT_WEIGHTS["all_orders"]
    naive_listed = len(truth["listed"]) * DAYS * SPOT_WEIGHTS["all_orders"]
    with capsys.disabled():
        print(
            f"\nSPOT DAGSTER BACKFILL ({DAYS} days): server-measured weight {spent} = one-off full probe "
            f"{probe} + backfill {run}; 24 h windows over {active} active symbols {naive_active} "
            f"({naive_active / run:.1f}x the backfill, {naive_active / spent:.1f}x with the probe), over "
            f"{len(truth['listed'])} listed {naive_listed} ({naive_listed / run:.0f}x, {naive_listed / spent:.0f}x)"
        )
    assert naive_active / run >= 5
    assert naive_listed / run >= 50
    assert naive_listed / spent >= 50  # even paying the first-time probe
    assert "backfill" in capsys.readouterr().out


@pytest.mark.slow
def test_dagster_asset_materialize_partition_range(sandbox, window, tmp_path, monkeypatch) -> None:
    """The same backfill from Dagster's own CLI, as a user would start it."""
    data, home = tmp_path / "data", tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, **_settings(monkeypatch, sandbox, data, dagster_home=home).environment()}
    start, end = window
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("dagster")),
            "asset",
            "materialize",
            "-m",
            "assets.definitions",
            "--select",
            "spot_orders",
            "--partition-range",
            f"{start}...{end}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert lake_rows(data, "spot_orders") == truth_spot_orders(sandbox.truth(), start, end)
    assert lake_paths(data, "spot_order_lists") == []  # only the selected asset of the multi-asset ran


def test_checks_pass_and_plan_is_recorded(sandbox, window, tmp_path, monkeypatch) -> None:
    data = tmp_path / "data"
    settings = _settings(monkeypatch, sandbox, data)
    start, end = window
    start = end - timedelta(days=9)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("spot_backfill").execute_in_process(
        instance=instance, tags={RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()}
    )
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {
        "unique_symbol_order_id",
        "update_time_in_partition_day",
        "executed_qty_le_orig_qty",
        "decimals_non_negative",
        "enums_known",
        "unique_order_list_id",
        "transaction_time_in_partition_day",
    }
    assert all(e.passed for e in evaluations), [(e.check_name, e.metadata) for e in evaluations if not e.passed]
    events = result.get_asset_materialization_events()
    per_day = {
        e.partition: e.step_materialization_data.materialization.metadata["row_count"].value
        for e in events
        if e.asset_key.to_user_string() == "spot_orders"
    }
    assert per_day == {
        d.isoformat(): lake.read_partition(data, "spot_orders", "main", d).num_rows
        for d in partition_days(data, "spot_orders")
    }  # each day its own count
    assert len(set(per_day.values())) > 1
    mats = {e.asset_key.to_user_string(): e for e in events}  # the last event of each asset carries the summary
    meta = mats["spot_orders"].step_materialization_data.materialization.metadata
    plan = meta["plan"].value
    assert set(plan["strategies"]) == {"cursor", "windows", "skip"} and plan["est_weight"] > 0
    assert meta["weight_spent"].value > 0
    run_tags = instance.get_run_by_id(result.run_id).tags
    assert int(run_tags["orderlake/spot_weight_spent"]) == meta["weight_spent"].value
    assert int(run_tags["orderlake/spot_plan_weight"]) == plan["est_weight"]


def test_delisted_pair_is_a_recorded_blind_spot(sandbox, window, tmp_path, monkeypatch, capsys) -> None:
    data = tmp_path / "data"
    settings = _settings(monkeypatch, sandbox, data)
    end = window[1]
    assert (
        main(
            [
                "backfill",
                "--start",
                (end - timedelta(days=2)).isoformat(),
                "--end",
                end.isoformat(),
                "--select",
                "spot",
                "--quiet",
            ],
            settings,
        )
        == 0
    )
    capsys.readouterr()
    assert main(["status"], settings) == 0
    report = capsys.readouterr().out
    delisted = sandbox.truth()["delisted"][0]
    assert f"delisted pair {delisted}" in report
    assert "archived" in report


def test_ws_transport_writes_the_same_rows(sandbox, window, tmp_path, monkeypatch) -> None:
    end = window[1]
    start = end - timedelta(days=4)
    rows = {}
    for transport in ("rest", "ws"):
        data = tmp_path / transport
        settings = _settings(monkeypatch, sandbox, data, spot_transport=transport)
        argv = ["backfill", "--start", start.isoformat(), "--end", end.isoformat(), "--select", "spot", "--quiet"]
        assert main(argv, settings) == 0
        rows[transport] = lake_rows(data, "spot_orders")
    assert rows["rest"] == rows["ws"] and rows["rest"]


def test_bad_range_is_refused_clearly(tmp_path, capsys) -> None:
    settings = Settings(data_dir=tmp_path)
    assert main(["backfill", "--start", "2026-02-10", "--end", "2026-02-01", "--select", "spot"], settings) == 2
    assert "is before --start" in capsys.readouterr().err
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    assert main(["backfill", "--start", "2026-02-10", "--end", tomorrow, "--select", "spot"], settings) == 2
    assert "not a complete UTC day" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="must be a date"):
        main(["backfill", "--start", "yesterday", "--end", "2026-02-01"], settings)


def test_daily_job_uses_plain_windows_over_active_symbols(sandbox, window, tmp_path, monkeypatch) -> None:
    data = tmp_path / "data"
    settings = _settings(monkeypatch, sandbox, data)
    day = window[1]
    defs = build_definitions(settings)
    # the first ever run of an account: the index asset does the full probe, the daily fetch stays cheap
    result = defs.resolve_job_def("spot_daily").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), partition_key=day.isoformat()
    )
    assert result.success
    mats = {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    plan = mats["spot_orders"]["plan"].value
    assert plan["mode"] == "daily" and plan["strategies"]["cursor"]["symbols"] == 0
    traded = {r["symbol"] for r in sandbox.truth()["spot_orders"]}
    # every traded pair, plus the pairs of held assets (a first order on them must not wait for a backfill)
    assert plan["strategies"]["windows"]["symbols"] >= len(traded)
    assert mats["spot_orders"]["discovery"].value is None  # the index asset just refreshed it
    assert "spot_open_orders" in mats and partition_days(data, "spot_orders") == [day]


def test_cli_backfill_of_trades_equals_truth(sandbox, window, tmp_path, monkeypatch) -> None:
    from tests.support.trades import api_shape, lake_shape

    data = tmp_path / "data"
    settings = _settings(monkeypatch, sandbox, data)
    start, end = window
    argv = ["backfill", "--start", start.isoformat(), "--end", end.isoformat(), "--quiet"]
    assert main([*argv, "--select", "spot"], settings) == 0
    before = sandbox.stats()["weight"]["spot"]
    assert main([*argv, "--select", "trades"], settings) == 0
    spent = sandbox.stats()["weight"]["spot"] - before

    lo, hi = day_start_ms(start), day_window(end)[1]
    want = sorted(api_shape(t) for t in sandbox.truth()["spot_trades"] if lo <= t["time"] <= hi)
    assert sorted(lake_shape(r) for r in lake_rows(data, "spot_trades")) == want
    assert partition_days(data, "spot_trades")[0] == start
    active = len(sandbox.truth()["active"])
    assert spent * 5 <= active * DAYS * SPOT_WEIGHTS["my_trades"] + 2 * SPOT_WEIGHTS["time"]

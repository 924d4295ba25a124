"""Many accounts through Dagster: account x day partitions over two sandbox accounts (their own uid, key and data).

Each account's lake equals its own sandbox's truth, each spends one download id per market, and one account that
fails (a wrong key) leaves the other account's days written and materialized, in the same run and in its own.
"""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from assets.cli import main
from assets.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from assets.definitions import build_definitions
from assets.fleet.definitions import JOB
from pipeline.exports.ledger import ExportLedger
from pipeline.futures.stored import latest_orders
from pipeline.sandbox.testing import start_sandbox
from pipeline.settings import Settings
from pipeline.storage.schemas import futures_orders
from pipeline.times import DAY_MS, day_of, day_start_ms, now_ms
from tests.support.assets import lake_rows, truth_spot_orders
from tests.support.exports import EXPORT_SANDBOX, FROM_EXPORT
from tests.support.fleet import fleet_settings
from tests.support.lake_files import stored_bytes

DAYS = 5
ACCOUNTS = Path(__file__).resolve().parents[1] / "support" / "accounts.toml"
SANDBOX = {**EXPORT_SANDBOX, "futures_history_days": 30}


def _range(now: int) -> tuple[date, date]:
    """The days up to yesterday of ``now``: the wall clock is read once per test and the sandboxes' clocks are set
    to the same instant, so a run that crosses midnight asks for, and compares, the same days throughout."""
    end = day_of(now) - timedelta(days=1)
    return end - timedelta(days=DAYS - 1), end


def _settings(tmp_path: Path, monkeypatch, sandboxes: dict, secrets: dict[str, str], start: date) -> Settings:
    return fleet_settings(tmp_path, monkeypatch, sandboxes, secrets, start=start, time_scale=SANDBOX["time_scale"])


def _run(
    settings: Settings, instance: dg.DagsterInstance, first: str, last: str, days: tuple[date, date]
) -> dg.ExecuteInProcessResult:
    start, end = days
    tags = {RANGE_START_TAG: f"{first}|{start}", RANGE_END_TAG: f"{last}|{end}"}
    job = build_definitions(settings).resolve_job_def(JOB)
    return job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)


def _materialized(instance: dg.DagsterInstance, table: str) -> set[str]:
    return {str(k) for k in instance.get_materialized_partitions(dg.AssetKey(table))}


def _export_truth(truth: dict, market: str, start: date) -> list[dict]:
    lo = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp() * 1000)
    hi = lo + DAYS * 86_400_000 - 1
    want = [o for o in truth[f"{market}_orders"] if lo <= o["updateTime"] <= hi]
    rows = futures_orders.from_api(want, account="x", market=market, source="truth", ingested_at=0).to_pylist()
    return sorted(({k: r[k] for k in FROM_EXPORT} for r in rows), key=lambda r: (r["symbol"], r["order_id"]))


def _lake(data: Path, table: str, account: str, columns=None) -> list[dict]:
    rows = [{k: v for k, v in r.items() if k != "account"} for r in lake_rows(data, table, account)]
    if columns:
        rows = sorted(({k: r[k] for k in columns} for r in rows), key=lambda r: (r["symbol"], r["order_id"]))
    return rows


@pytest.mark.slow
def test_two_accounts_each_equal_their_truth_and_one_failure_blocks_no_other(tmp_path, monkeypatch) -> None:
    now = now_ms()
    start, end = _range(now)
    with (
        start_sandbox(**SANDBOX, seed=11, uid=1001, api_key="key-a", now_ms=now) as sa,
        start_sandbox(**SANDBOX, seed=12, uid=1002, api_key="key-b", now_ms=now) as sb,
    ):
        good = {"a": "sandbox-api-secret", "b": "sandbox-api-secret"}
        instance = dg.DagsterInstance.ephemeral()
        # b's key is wrong: one run over both accounts fails for b only
        broken = _settings(tmp_path, monkeypatch, {"a": sa, "b": sb}, {**good, "b": "wrong-secret"}, start)
        failed = _run(broken, instance, "a", "b", (start, end))
        assert not failed.success
        assert "1 account(s) failed: b (" in str(failed.all_events)
        days = {f"a|{start + timedelta(days=i)}" for i in range(DAYS)}
        for table in ("spot_orders", "futures_orders", "pm_um_orders"):
            assert _materialized(instance, table) == days, table  # a's days, none of b's
        data = tmp_path / "data"
        truth_a = sa.truth()
        assert _lake(data, "spot_orders", "a") == [
            {k: v for k, v in r.items() if k != "account"} for r in truth_spot_orders(truth_a, start, end)
        ]
        assert _lake(data, "futures_orders", "a", FROM_EXPORT) == _export_truth(truth_a, "usdm", start)
        assert _lake(data, "pm_um_orders", "a", FROM_EXPORT) == _export_truth(truth_a, "pm_um", start)

        # b fixed: its own run completes; a's ledger is untouched (no id spent twice)
        fixed = _settings(tmp_path, monkeypatch, {"a": sa, "b": sb}, good, start)
        assert _run(fixed, instance, "b", "b", (start, end)).success
        truth_b = sb.truth()
        assert _lake(data, "spot_orders", "b") == [
            {k: v for k, v in r.items() if k != "account"} for r in truth_spot_orders(truth_b, start, end)
        ]
        assert _lake(data, "spot_orders", "b") != _lake(data, "spot_orders", "a")  # two accounts, two histories
        assert _lake(data, "futures_orders", "b", FROM_EXPORT) == _export_truth(truth_b, "usdm", start)
        assert _lake(data, "pm_um_orders", "b", FROM_EXPORT) == _export_truth(truth_b, "pm_um", start)
        ledger = ExportLedger(data)
        for account in ("a", "b"):
            for market in ("usdm", "pm_um"):
                ids = {e.download_id for e in ledger.entries(market=market, kind="order", account=account)}
                assert len(ids - {None}) == 1, (account, market, ids)
        assert _materialized(instance, "futures_orders") == days | {d.replace("a|", "b|") for d in days}
        # canary: no key or secret of either account in Dagster's storage or anywhere under the data dir
        stored = " ".join(
            str(r.run_config) + str(r.tags) + " ".join(str(e) for e in instance.all_logs(r.run_id))
            for r in instance.get_runs()
        )
        files = b"".join(stored_bytes(data))  # the lake's objects too, when it is on S3
        for value in (*good.values(), "canary-key-a-77", "canary-key-b-88"):
            assert value not in stored and value.encode() not in files, value


def test_an_accounts_file_makes_the_fleet_code_location() -> None:
    env = {"BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s"}
    fleet_defs = build_definitions(Settings.from_env({**env, "ORDERLAKE_ACCOUNTS_FILE": str(ACCOUNTS)}))
    dg.Definitions.validate_loadable(fleet_defs)
    job = fleet_defs.resolve_job_def(JOB)
    partitions = job.partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    assert partitions.get_partitions_def_for_dimension("account").get_partition_keys() == ["desk-a", "desk-b"]
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} >= {
        "spot_orders",
        "spot_order_lists",
        "futures_orders",
        "pm_um_orders",
    }
    # without the file: the single-account code location, unchanged
    single = build_definitions(Settings.from_env(env))
    with pytest.raises(dg.DagsterInvariantViolationError):
        single.resolve_job_def(JOB)
    assert single.resolve_job_def("spot_backfill").partitions_def == dg.DailyPartitionsDefinition(
        "2024-01-01", timezone="UTC"
    )


@pytest.mark.slow
def test_orderlake_backfill_with_an_accounts_file_runs_every_account(tmp_path, monkeypatch, capsys) -> None:
    now = now_ms()
    start, end = _range(now)
    keys = {"a": "cli-secret-a", "b": "cli-secret-b"}
    with (
        start_sandbox(**SANDBOX, seed=21, api_key="cli-key-a", api_secret=keys["a"], now_ms=now) as sa,
        start_sandbox(**SANDBOX, seed=22, api_key="cli-key-b", api_secret=keys["b"], now_ms=now) as sb,
    ):
        settings = _settings(tmp_path, monkeypatch, {"a": sa, "b": sb}, keys, start)
        argv = ["backfill", "--start", str(start), "--end", str(end), "--select", "all"]
        assert main(argv, settings) == 0
        out = capsys.readouterr().out
        assert "a: ok" in out and "b: ok" in out
        data = tmp_path / "data"
        lo, hi = day_start_ms(start), day_start_ms(end) + DAY_MS
        for name, sx in (("a", sa), ("b", sb)):
            truth = sx.truth()
            for market in ("usdm", "pm_um"):  # exports, then the REST tails over the same days
                want = {
                    (o["symbol"], o["orderId"]): (o["status"], o["updateTime"])
                    for o in truth[f"{market}_orders"]
                    if lo <= o["updateTime"] < hi
                }
                got = latest_orders(data, name, futures_orders.MARKETS[market])
                assert {k: (o.status, o.update_ms) for k, o in got.items() if k in want} == want, (name, market)
                prefix = "futures" if market == "usdm" else "pm_um"
                trades = sorted((t["symbol"], t["id"]) for t in truth[f"{market}_trades"] if lo <= t["time"] < hi)
                assert trades, (name, market)  # the sandbox traded on these days: the check below can fail
                stored = lake_rows(data, f"{prefix}_trades", name)
                assert sorted((r["symbol"], r["trade_id"]) for r in stored) == trades, (name, market)
                income = sorted((r["tranId"], r["asset"]) for r in truth[f"{market}_income"] if lo <= r["time"] < hi)
                stored = lake_rows(data, f"{prefix}_income", name)
                assert sorted((r["tran_id"], r["asset"]) for r in stored) == income, (name, market)
        ledger = ExportLedger(data)
        markets = ("usdm", "pm_um")
        spent = {(a, m): len(ledger.entries(market=m, kind="order", account=a)) for a in "ab" for m in markets}
        assert main([*argv[:-1], "spot"], settings) == 0  # spot alone never asks an export
        assert {(a, m): len(ledger.entries(market=m, kind="order", account=a)) for a in "ab" for m in markets} == spent

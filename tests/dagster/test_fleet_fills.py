"""The fleet's trade and income exports: `orderlake backfill --select trades|income` with an accounts file, over a
range that straddles REST's 90 days, for two sandbox accounts (their own uid, key, history and export quota).

Each account's older days come from its own trade and income exports (one id per account, market and kind, never one
for a day REST serves), its recent days from REST, and its lake equals its truth on every day of the range.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from assets.cli import main
from pipeline.exports.ledger import ExportLedger
from pipeline.sandbox.testing import start_sandbox
from pipeline.times import DAY_MS, day_start_ms
from pipeline.trades.futures_tail import last_day_beyond_rest
from tests.support.assets import lake_rows, partition_days
from tests.support.fleet import fleet_settings
from tests.support.futures_lake import store_truth_orders

SANDBOX = {"listed_symbols": 20, "history_days": 3, "futures_history_days": 130, "time_scale": 600.0}
MARKETS = (("usdm", "futures"), ("pm_um", "pm_um"))


@pytest.mark.slow
def test_each_account_takes_its_old_days_from_its_own_exports(tmp_path, monkeypatch, capsys) -> None:
    today = datetime.now(UTC).date()
    end = today - timedelta(days=85)
    start = end - timedelta(days=12)
    secrets = {"a": "fills-secret-a", "b": "fills-secret-b"}
    with (
        start_sandbox(**SANDBOX, seed=31, api_key="fills-key-a", api_secret=secrets["a"]) as sa,
        start_sandbox(**SANDBOX, seed=32, api_key="fills-key-b", api_secret=secrets["b"]) as sb,
    ):
        sandboxes = {"a": sa, "b": sb}
        settings = fleet_settings(
            tmp_path, monkeypatch, sandboxes, secrets, start=today - timedelta(days=200), time_scale=600.0
        )
        data = tmp_path / "data"
        for name, sx in sandboxes.items():  # the trades' REST tail is planned from the account's stored orders
            for market, _ in MARKETS:
                store_truth_orders(data, sx.truth(), market, account=name)
        argv = ["backfill", "--start", start.isoformat(), "--end", end.isoformat()]
        assert main([*argv, "--select", "trades"], settings) == 0
        assert main([*argv, "--select", "income"], settings) == 0
        out = capsys.readouterr().out
        assert out.count("a: ok") == 4 and out.count("b: ok") == 4  # two jobs per selection, each account in turn

        ledger = ExportLedger(data)
        lo, hi = day_start_ms(start), day_start_ms(end) + DAY_MS
        for name, sx in sandboxes.items():
            entries = ledger.entries(account=name)
            assert sorted((e.market, e.kind) for e in entries) == sorted(
                (m, k) for m, _ in MARKETS for k in ("trade", "income")
            ), name  # one id per market and kind, and no order export
            now = sx.exchange.clock.market()
            for e in entries:  # only the days REST no longer serves whole
                assert e.status == "ingested" and e.start_ms == day_start_ms(start), e.describe()
                assert e.end_ms == day_start_ms(last_day_beyond_rest(e.kind, now)) + DAY_MS - 1, e.describe()
            truth = sx.truth()
            for market, prefix in MARKETS:
                fills = [t for t in truth[f"{market}_trades"] if lo <= t["time"] < hi]
                want = sorted((t["symbol"], t["id"], Decimal(t["qty"]), t["time"]) for t in fills)
                got = [
                    (r["symbol"], r["trade_id"], r["qty"], int(r["time"].timestamp() * 1000))
                    for r in lake_rows(data, f"{prefix}_trades", name)
                ]
                assert sorted(got) == want and len(want) > 20, (name, market)
                assert {r["source"] for r in lake_rows(data, f"{prefix}_trades", name, drop=())} == {"export", "rest"}
                want = sorted(
                    (r["incomeType"], r["tranId"], r["asset"])
                    for r in truth[f"{market}_income"]
                    if lo <= r["time"] < hi
                )
                got = [(r["income_type"], r["tran_id"], r["asset"]) for r in lake_rows(data, f"{prefix}_income", name)]
                assert sorted(got) == want, (name, market)
                assert partition_days(data, f"{prefix}_income", name) == [start + timedelta(days=i) for i in range(13)]
        assert {r["trade_id"] for r in lake_rows(data, "futures_trades", "a")} != {
            r["trade_id"] for r in lake_rows(data, "futures_trades", "b")
        }  # two accounts, two histories

        spent = {name: sx.stats()["export_ids_created"] for name, sx in sandboxes.items()}
        assert main([*argv, "--select", "trades"], settings) == 0  # again: everything is covered, no id is spent
        assert {name: sx.stats()["export_ids_created"] for name, sx in sandboxes.items()} == spent
        recent = ["backfill", "--start", str(end + timedelta(days=10)), "--end", str(end + timedelta(days=12))]
        assert main([*recent, "--select", "income"], settings) == 0  # days REST serves whole: no id at all
        assert {name: sx.stats()["export_ids_created"] for name, sx in sandboxes.items()} == spent

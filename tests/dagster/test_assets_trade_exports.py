"""`orderlake backfill --select trades|income` over a range that straddles REST's 90 days, against the sandbox:
the older days come from trade and income EXPORTS (one id per endpoint, never one for days REST serves), the recent
ones from REST, and the lake equals the truth on every day of the range."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial

import pytest

from assets.cli import main
from pipeline.exports.ledger import ExportLedger
from pipeline.sandbox.testing import start_sandbox
from pipeline.times import DAY_MS, day_of, day_start_ms, month_of, now_ms
from pipeline.trades.futures_tail import last_day_beyond_rest
from pipeline.warehouse import status as warehouse_status
from tests.support.assets import lake_rows, partition_days, sandbox_settings
from tests.support.futures_lake import store_truth_orders


@pytest.fixture(scope="module")
def sandbox():
    # serverTime, which the backfill reads REST's reach from, at noon of today (read once) and ticking from there:
    # a test that crosses midnight still sees the day the sandbox's account was made on
    noon = (now_ms() // DAY_MS) * DAY_MS + 12 * 3_600_000
    cfg = {"listed_symbols": 20, "history_days": 3, "futures_history_days": 130, "time_scale": 600.0}
    with start_sandbox(**cfg, export_processing_seconds=60.0, now_ms=noon, server_time_at_market=True) as sx:
        yield sx


def test_backfill_takes_old_days_from_exports_and_recent_ones_from_rest(sandbox, tmp_path, monkeypatch, capsys) -> None:
    data = tmp_path / "data"
    today = day_of(sandbox.exchange.clock.market())  # the sandbox's day, however late this test runs
    settings = sandbox_settings(monkeypatch, sandbox, data, start_date=today - timedelta(days=200))
    truth = sandbox.truth()
    for market in ("usdm", "pm_um"):
        store_truth_orders(data, truth, market)
    end = today - timedelta(days=85)
    start = end - timedelta(days=12)
    argv = ["backfill", "--start", start.isoformat(), "--end", end.isoformat(), "--quiet"]
    assert main([*argv, "--select", "trades"], settings) == 0
    assert main([*argv, "--select", "income"], settings) == 0
    entries = ExportLedger(data).entries()
    assert sorted((e.market, e.kind) for e in entries) == sorted(
        (m, k) for m in ("usdm", "pm_um") for k in ("trade", "income")
    )
    now = sandbox.exchange.clock.market()
    for e in entries:  # exports only for the days REST no longer serves whole
        assert e.status == "ingested" and e.start_ms == day_start_ms(start)
        assert e.end_ms == day_start_ms(last_day_beyond_rest(e.kind, now)) + DAY_MS - 1
    lo, hi = day_start_ms(start), day_start_ms(end) + DAY_MS
    for market, trades, income in (
        ("usdm", "futures_trades", "futures_income"),
        ("pm_um", "pm_um_trades", "pm_um_income"),
    ):
        fills = [t for t in truth[f"{market}_trades"] if lo <= t["time"] < hi]
        want = sorted((t["symbol"], t["id"], Decimal(t["qty"]), t["time"]) for t in fills)
        got = [
            (r["symbol"], r["trade_id"], r["qty"], int(r["time"].timestamp() * 1000)) for r in lake_rows(data, trades)
        ]
        assert sorted(got) == want and len(want) > 20
        assert {r["source"] for r in lake_rows(data, trades, drop=())} == {"export", "rest"}
        want = sorted(
            (r["incomeType"], r["tranId"], r["asset"]) for r in truth[f"{market}_income"] if lo <= r["time"] < hi
        )
        assert sorted((r["income_type"], r["tran_id"], r["asset"]) for r in lake_rows(data, income)) == want
        assert partition_days(data, income) == [start + timedelta(days=i) for i in range(13)]
    ids = sandbox.stats()["export_ids_created"]
    assert main([*argv, "--select", "trades"], settings) == 0  # again: everything is covered, no id is spent
    assert sandbox.stats()["export_ids_created"] == ids
    capsys.readouterr()
    # the status reads the wall clock: read it at the sandbox's time, and count the ids the ledger holds for that
    # month (a run across a month's end requested them in the next one)
    wall = sandbox.exchange.clock.wire()
    monkeypatch.setattr(
        warehouse_status,
        "coverage_report",
        partial(warehouse_status.coverage_report, now=datetime.fromtimestamp(wall / 1000, UTC)),
    )
    used = sum(
        1 for e in entries if (e.market, e.kind) == ("usdm", "trade") and month_of(e.requested_at) == month_of(wall)
    )
    assert main(["status"], settings) == 0
    text = capsys.readouterr().out
    section = text.split("TRADES AND INCOME", 1)[1].split("KNOWN BLIND SPOTS", 1)[0]
    first_rest = last_day_beyond_rest("trade", now) + timedelta(days=1)
    assert f"futures_trades: 13 days, {start}..{end}; from exports: {(first_rest - start).days} days" in section
    assert f"usdm/trade export ids this month: {used} of 5 used" in section
    before = start - timedelta(days=1)
    assert (
        f"no trade export ingested: {settings.start_date}..{before} [{(before - settings.start_date).days + 1} days]"
        in section
    )

"""Integration: the USDⓈ-M and PM trades and income REST tails against the sandbox.

Acceptance (issue 13): the lake's trades and income equal the sandbox's truth (every row, decimal and time) on the
days REST serves whole; every filled order's trades add up to its executed quantity; for every futures day pnl_daily
equals the truth's income records summed by type and asset; the clock advancing brings new days. Export rows stored
for days REST serves are reconciled: the rows REST contradicts are reported, REST's rows are kept.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import pipeline.binance as binance
import pipeline.sandbox.testing as testing
from pipeline.settings import Settings
from pipeline.storage.lakefs import connect_catalog
from pipeline.storage.schemas import futures_income, futures_trades
from pipeline.times import DAY_MS, day_of, day_start_ms, days_between
from pipeline.trades.futures_tail import run_futures_income_tail, run_futures_trades_tail
from pipeline.warehouse.catalog import build_catalog
from tests.support.assets import lake_rows
from tests.support.futures_lake import store_as_export, store_truth_orders

pytestmark = pytest.mark.slow
MARKETS = ("usdm", "pm_um")
STAMPS = ("ingested_at", "source", "account", "market")
# The module's market clock at a fixed instant (serverTime follows it; the client syncs to it), not the wall clock:
# REST reaches a day 90 days back whole only until a minute before midnight (the tails ask a minute inside).
AT = int(datetime(2026, 6, 15, 13, tzinfo=UTC).timestamp() * 1000)


def _client(sx, data_dir: Path) -> binance.BinanceClient:
    env = testing.sandbox_env(sx, data_dir)
    env["ORDERLAKE_BUDGET_DIR"] = str(data_dir / "budget")
    return binance.BinanceClient.from_settings(Settings.from_env(env))


def _run(sx, data_dir: Path, days: list) -> dict:
    client = _client(sx, data_dir)
    truth = sx.truth()
    now = sx.exchange.clock.market()
    out = {}
    for market in MARKETS:
        store_truth_orders(data_dir, truth, market)
        api = client.futures if market == "usdm" else client.papi
        quiet = lambda line: None  # noqa: E731
        out[market] = (
            run_futures_trades_tail(
                api, market=market, data_dir=data_dir, account="main", days=days, now_ms=now, log=quiet
            ),
            run_futures_income_tail(
                api, market=market, data_dir=data_dir, account="main", days=days, now_ms=now, log=quiet
            ),
        )
    client.close()
    return out


def _served(result) -> int:
    return min(day_start_ms(d) for d in result.written)


def _truth_rows(convert, rows: list[dict], market: str, lo: int, hi: int) -> list[tuple]:
    """The truth's rows of ``[lo, hi)``, converted as the pipeline converts them."""
    kept = [r for r in rows if lo <= r["time"] < hi]
    table = convert(kept, account="main", market=market, source="x", ingested_at=0)
    drop = (*STAMPS, "base_asset", "quote_asset", "pnl_asset")
    return sorted(tuple(v for k, v in r.items() if k not in drop) for r in table.to_pylist())


def _lake(data_dir: Path, table: str) -> list[tuple]:
    drop = (*STAMPS, "base_asset", "quote_asset", "pnl_asset")
    return sorted(tuple(v for k, v in r.items() if k not in drop) for r in lake_rows(data_dir, table, drop=()))


def _store_tampered_exports(data_dir: Path, truth: dict, lo: int, hi: int) -> tuple[dict, dict]:
    """The truth's trades and income of ``[lo, hi)`` stored as export rows, a commission, a time (a second early)
    and an income amount changed; returns how many rows of each were stored, and the changed (key, column)s."""
    exported, tampered = {}, {}
    for market in MARKETS:
        trades = [dict(t) for t in truth[f"{market}_trades"] if lo <= t["time"] < hi]
        income = [dict(r) for r in truth[f"{market}_income"] if lo <= r["time"] < hi]
        assert len(trades) > 2 and len(income) > 2
        trades[0]["commission"] = str(Decimal(trades[0]["commission"]) + Decimal("0.00000001"))
        moved = next(t for t in trades[1:] if day_of(t["time"] - 1000) == day_of(t["time"]))
        moved["time"] -= 1000  # not the same time truncated to the second: another time
        income[0]["income"] = str(Decimal(income[0]["income"]) * 2 + 1)
        tampered[market, "trades"] = sorted(
            [((trades[0]["symbol"], trades[0]["id"]), "commission"), ((moved["symbol"], moved["id"]), "time")]
        )
        tampered[market, "income"] = [((income[0]["incomeType"], income[0]["tranId"], income[0]["asset"]), "income")]
        exported[market, "trades"], exported[market, "income"] = len(trades), len(income)
        store_as_export(data_dir, futures_trades.MARKETS[market], trades, market)
        store_as_export(data_dir, futures_income.MARKETS[market], income, market)
    return exported, tampered


@pytest.fixture(scope="module")
def sandbox():
    with testing.start_sandbox(
        listed_symbols=20,
        history_days=3,
        futures_history_days=130,
        time_scale=60.0,
        now_ms=AT,
        server_time_at_market=True,
    ) as sx:
        yield sx


def test_trades_and_income_equal_the_truth_and_pnl_daily_its_sums(sandbox, tmp_path) -> None:
    now = sandbox.exchange.clock.market()
    days = days_between(day_of(now) - timedelta(days=120), day_of(now) - timedelta(days=1))
    truth = sandbox.truth()
    exported, tampered = _store_tampered_exports(tmp_path, truth, day_start_ms(days[-6]), day_start_ms(days[-3]))
    results = _run(sandbox, tmp_path, days)
    for market in MARKETS:
        trades, income = results[market]
        for result, kind in ((trades, "trades"), (income, "income")):
            report = result.reconciliation
            got = sorted((tuple(m.key.values()), m.column) for m in report.mismatches)
            assert got == tampered[market, kind] and report.compared == exported[market, kind]
        assert trades.unreachable and trades.unreachable[-1] < day_of(now - 89 * DAY_MS)  # beyond REST: exports
        lo = _served(trades)
        end = day_start_ms(days[-1]) + DAY_MS
        want = _truth_rows(futures_trades.from_api, truth[f"{market}_trades"], market, lo, end)
        got = _lake(tmp_path, futures_trades.MARKETS[market])
        assert len(got) == len(want) > 200 and got == want
        assert trades.mismatches == []
        lo = _served(income)
        want = _truth_rows(futures_income.from_api, truth[f"{market}_income"], market, lo, end)
        got = _lake(tmp_path, futures_income.MARKETS[market])
        assert len(got) == len(want) > 1000 and got == want
        assert trades.cost.weight == 5 * trades.cost.calls["user_trades"]

    built = build_catalog(tmp_path)
    with connect_catalog(built.path) as con:
        pnl = con.sql(
            "SELECT day, market, asset, sum(realized_pnl), sum(funding), sum(commission) FROM pnl_daily "
            "WHERE market <> 'spot' GROUP BY ALL"
        ).fetchall()
        assert con.sql("SELECT count(*) FROM order_trade_mismatches").fetchone() == (0,)
    sums: dict = defaultdict(lambda: [Decimal(0)] * 3)
    kinds = {"REALIZED_PNL": 0, "FUNDING_FEE": 1, "COMMISSION": 2}
    served = {m: _served(results[m][1]) for m in MARKETS}
    for market in MARKETS:
        for r in truth[f"{market}_income"]:
            if r["incomeType"] in kinds and served[market] <= r["time"] < day_start_ms(days[-1]) + DAY_MS:
                sums[(day_of(r["time"]), market, r["asset"])][kinds[r["incomeType"]]] += Decimal(r["income"])
    assert {(d, m, a): list(v) for d, m, a, *v in pnl} == {k: v for k, v in sums.items()}


def test_advancing_the_clock_brings_the_new_days(tmp_path) -> None:
    with testing.start_sandbox(listed_symbols=20, history_days=3, futures_history_days=20, time_scale=60.0) as sx:
        start = day_of(sx.exchange.clock.market()) - timedelta(days=10)
        _run(sx, tmp_path, days_between(start, day_of(sx.exchange.clock.market()) - timedelta(days=1)))
        sx.exchange.clock.advance(days=3)
        today = day_of(sx.exchange.clock.market())
        results = _run(sx, tmp_path, days_between(today - timedelta(days=3), today - timedelta(days=1)))
        truth = sx.truth()
        end = day_start_ms(today)
        for market in MARKETS:
            trades = truth[f"{market}_trades"]
            want = _truth_rows(futures_trades.from_api, trades, market, day_start_ms(start), end)
            assert _lake(tmp_path, futures_trades.MARKETS[market]) == want
            assert results[market][0].unreachable == []

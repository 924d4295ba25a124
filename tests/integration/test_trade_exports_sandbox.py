"""Integration: USDⓈ-M and PM trade and income EXPORTS against the sandbox, real client, time-scaled clock.

Acceptance (issue 13): for days older than REST's retention the lake's trades and income, from the export files in
each dialect of the public record, equal the sandbox's truth (every row, decimal and time the file carries); each
export spends one id of its own endpoint's quota (5 a month), a second request of the range spends none, and a
request beyond the quota is refused before Binance is called; every filled order whose fills lie on the exported
days adds up to its executed quantity, and pnl_daily equals the truth's income sums by day, type and asset.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import pipeline.sandbox.testing as testing
from pipeline.binance import BinanceClient
from pipeline.binance.exports import EXPORT_ENDPOINTS
from pipeline.exports.chain import ExportChain
from pipeline.exports.errors import QuotaWouldBeExceeded
from pipeline.exports.ledger import ExportLedger
from pipeline.settings import Settings
from pipeline.storage.lakefs import connect_catalog
from pipeline.storage.schemas import futures_income, futures_orders, futures_trades
from pipeline.times import day_end_ms, day_of, day_start_ms
from pipeline.trades.spot_backfill import mismatches
from pipeline.trades.stored import filled_orders, stored_trades
from pipeline.warehouse.catalog import build_catalog
from tests.support.assets import lake_rows
from tests.support.exports import EXPORT_SANDBOX, EXPORT_SPEED
from tests.support.futures_lake import store_truth_orders

pytestmark = pytest.mark.slow
# what each dialect carries besides the key (docs/export-files.md §Trade history and §Transaction (income) history)
TRADE_COMMON = ("symbol", "trade_id", "order_id", "side", "price", "qty", "quote_qty", "realized_pnl")
TRADE_COMMON += ("commission", "commission_asset", "is_buyer", "is_maker", "time")
INCOME_COMMON = ("income_type", "tran_id", "asset", "symbol", "income", "time")
CASES = [  # (trade dialect, income dialect)
    ("current", "current"),
    ("legacy", "legacy"),
    ("short", "full"),
    ("ms", "current"),
]
# The sandbox's clock starts at a fixed instant (serverTime follows it) and the chains read that clock too, so the
# month whose quota the ids count against cannot turn during a test (a run across a month's end saw 0 used).
AT = int(datetime(2026, 6, 15, 13, tzinfo=UTC).timestamp() * 1000)


def _chain(client: BinanceClient, data_dir, sx, **changes) -> ExportChain:
    return ExportChain(
        client,
        ExportLedger(data_dir),
        data_dir=data_dir,
        account="main",
        allow_http_loopback=True,
        time_scale=1 / EXPORT_SPEED,
        now=lambda: sx.exchange.clock.wire() / 1000,
        **changes,
    )


def _complete(client: BinanceClient, data_dir, sx, timeout: float = 60.0) -> list[str]:
    """Poll as the sensor does (a fresh chain per tick) until no id is processing; the completed download ids."""
    deadline = time.monotonic() + timeout
    done: list[str] = []
    while time.monotonic() < deadline:
        chain = _chain(client, data_dir, sx)
        done += [o.run_key for o in chain.poll_due() if o.status == "completed"]
        if not chain.ledger.entries(status="processing"):
            return done
        time.sleep(0.05)
    raise AssertionError(f"exports still processing after {timeout} s")


def _shape(rows: list[dict], columns: tuple[str, ...]) -> list[tuple]:
    return sorted(tuple(r[c] for c in columns) for r in rows)


@pytest.mark.parametrize(("trade_dialect", "income_dialect"), CASES)
def test_trade_and_income_exports_equal_the_truth(tmp_path, trade_dialect: str, income_dialect: str) -> None:
    cfg = {**EXPORT_SANDBOX, "futures_history_days": 200, "now_ms": AT, "server_time_at_market": True}
    cfg |= {"export_trade_dialect": trade_dialect, "export_income_dialect": income_dialect}
    with testing.start_sandbox(**cfg) as sx:
        client = BinanceClient.from_settings(Settings.from_env(testing.sandbox_env(sx, tmp_path)))
        try:
            chain = _chain(client, tmp_path, sx)
            today = day_of(sx.exchange.clock.market())
            start, end = today - timedelta(days=150), today - timedelta(days=100)  # older than REST's 90 days
            fills = [ep for ep in EXPORT_ENDPOINTS.values() if ep.kind != "order"]
            for ep in fills:
                assert len(chain.request(ep, start, end, sleep=time.sleep)) == 1
            done = _complete(client, tmp_path, sx)
            assert len(done) == 4
            for did in done:
                _chain(client, tmp_path, sx).ingest(did)
            truth = sx.truth()
            lo, hi = day_start_ms(start), day_end_ms(end)
            for market in ("usdm", "pm_um"):
                want = [t for t in truth[f"{market}_trades"] if lo <= t["time"] <= hi]
                expected = futures_trades.from_api(want, account="main", market=market, source="x", ingested_at=0)
                got = lake_rows(tmp_path, futures_trades.MARKETS[market], drop=())
                columns = TRADE_COMMON + (("position_side",) if trade_dialect == "legacy" else ())
                assert len(got) == len(want) > 50
                assert _shape(got, columns) == _shape(expected.to_pylist(), columns)
                assert {r["pnl_asset"] for r in got} == {"USDT"}  # the symbols' assets, from exchangeInfo
                want = [r for r in truth[f"{market}_income"] if lo <= r["time"] <= hi]
                expected = futures_income.from_api(want, account="main", market=market, source="x", ingested_at=0)
                got = lake_rows(tmp_path, futures_income.MARKETS[market], drop=())
                columns = INCOME_COMMON + (("trade_id", "info") if income_dialect == "full" else ())
                assert len(got) == len(want) > 50
                assert _shape(got, columns) == _shape(expected.to_pylist(), columns)
                assert {r["income_type"] for r in got} >= {"FUNDING_FEE", "COMMISSION", "TRANSFER"}
            _assert_orders_add_up_and_pnl_daily(tmp_path, truth, lo, hi)
            ids = sx.stats()["export_ids_created"]
            assert ids == {f"{m}/{k}": 1 for m in ("usdm", "pm_um") for k in ("trade", "income")}
            for ep in fills:
                assert list(chain.request(ep, start, end)) == []  # already exported: nothing spent
                assert chain.quota(ep).limit == 5 and chain.quota(ep).used == 1
            limited = _chain(client, tmp_path, sx, monthly_limits={"trade": 1})
            with pytest.raises(QuotaWouldBeExceeded):
                limited.request(EXPORT_ENDPOINTS[("usdm", "trade")], start - timedelta(days=20), start)
            assert sx.stats()["export_ids_created"] == ids
        finally:
            client.close()


def _assert_orders_add_up_and_pnl_daily(data_dir, truth: dict, lo: int, hi: int) -> None:
    """Every filled order whose fills lie on the exported days adds up; pnl_daily equals the truth's income sums by
    day, market, type and asset on those days."""
    for market in ("usdm", "pm_um"):
        store_truth_orders(data_dir, truth, market)
        orders = filled_orders(data_dir, "main", futures_orders.MARKETS[market])
        assert mismatches(orders, stored_trades(data_dir, "main", futures_trades.MARKETS[market])) == []
    with connect_catalog(build_catalog(data_dir).path) as con:
        assert con.sql("SELECT count(*) FROM order_trade_mismatches").fetchone() == (0,)
        added_up = con.sql(
            "SELECT count(*) FROM orders o JOIN (SELECT market, symbol, order_id, sum(qty) AS q FROM trades "
            "GROUP BY ALL) t USING (market, symbol, order_id) WHERE o.market <> 'spot' AND t.q = o.executed_qty"
        ).fetchone()[0]
        pnl = con.sql(
            "SELECT day, market, asset, sum(realized_pnl), sum(funding), sum(commission) FROM pnl_daily "
            "WHERE market <> 'spot' GROUP BY ALL"
        ).fetchall()
    assert added_up > 50  # the join really finds the exported fills of the truth's orders
    sums: dict = defaultdict(lambda: [Decimal(0)] * 3)
    kinds = {"REALIZED_PNL": 0, "FUNDING_FEE": 1, "COMMISSION": 2}
    for market in ("usdm", "pm_um"):
        for r in truth[f"{market}_income"]:
            if r["incomeType"] in kinds and lo <= r["time"] <= hi:
                sums[(day_of(r["time"]), market, r["asset"])][kinds[r["incomeType"]]] += Decimal(r["income"])
    assert {(d, m, a): list(v) for d, m, a, *v in pnl} == dict(sums)

"""The sandbox's futures trades and income: consistent with its orders as the clock advances, and ``userTrades`` /
``income`` answer by the documented rules (docs/binance-facts.md §Futures userTrades, §Futures income)."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

import pytest

from pipeline.sandbox.auth import ApiError
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.core import Exchange, Params
from pipeline.storage.schemas import futures_income, futures_trades
from pipeline.times import DAY_MS

NOW = 1_790_000_000_000


@pytest.fixture(scope="module")
def ex() -> Exchange:
    return Exchange(SandboxConfig(now_ms=NOW, history_days=5, listed_symbols=20, futures_history_days=200))


def _ask(ex: Exchange, market: str, what: str, **params) -> list[dict]:
    handler = ex.futures_user_trades if what == "trades" else ex.futures_income
    return handler(Params({k: str(v) for k, v in params.items()}), market)


@pytest.mark.parametrize("market", ["usdm", "pm_um"])
def test_trades_add_up_to_every_order_and_income_follows_them(ex: Exchange, market: str) -> None:
    truth = ex.truth()
    qty: dict[int, Decimal] = defaultdict(Decimal)
    quote: dict[int, Decimal] = defaultdict(Decimal)
    for t in truth[f"{market}_trades"]:
        qty[t["orderId"]] += Decimal(t["qty"])
        quote[t["orderId"]] += Decimal(t["quoteQty"])
    orders = truth[f"{market}_orders"]
    assert sum(1 for o in orders if Decimal(o["executedQty"]) > 0) > 100
    for o in orders:
        assert qty[o["orderId"]] == Decimal(o["executedQty"]) and quote[o["orderId"]] == Decimal(o["cumQuote"])
    income = truth[f"{market}_income"]
    kinds = Counter(r["incomeType"] for r in income)
    assert {"COMMISSION", "REALIZED_PNL", "FUNDING_FEE", "TRANSFER"} <= set(kinds)
    by_trade = {str(t["id"]): t for t in truth[f"{market}_trades"]}
    for r in income:
        if r["incomeType"] == "COMMISSION":
            t = by_trade[r["tradeId"]]
            assert Decimal(r["income"]) == -Decimal(t["commission"]) and r["asset"] == t["commissionAsset"]
        if r["incomeType"] == "REALIZED_PNL":
            assert Decimal(r["income"]) == Decimal(by_trade[r["tradeId"]]["realizedPnl"]) != 0
        if r["incomeType"] == "FUNDING_FEE":
            assert r["time"] % (8 * 3_600_000) == 0
    assert {r["asset"] for r in income if r["incomeType"] == "COMMISSION"} == {"USDT", "BNB"}
    # tranId is unique within a type only: a trade's commission and realized PnL share it
    shared = Counter((r["tranId"]) for r in income if r["incomeType"] in ("COMMISSION", "REALIZED_PNL"))
    assert max(shared.values()) == 2
    assert len({(r["incomeType"], r["tranId"], r["asset"]) for r in income}) == len(income)
    futures_trades.from_api(truth[f"{market}_trades"], account="a", market=market, source="x", ingested_at=0)
    futures_income.from_api(income, account="a", market=market, source="x", ingested_at=0)  # exact decimals


def test_advancing_the_clock_adds_trades_and_never_changes_old_ones() -> None:
    ex = Exchange(SandboxConfig(now_ms=NOW, history_days=3, listed_symbols=20, futures_history_days=30))
    before = ex.truth()
    ex.clock.advance(days=10)
    after = ex.truth()
    old = {(t["symbol"], t["id"]): t for t in before["usdm_trades"]}
    new = {(t["symbol"], t["id"]): t for t in after["usdm_trades"]}
    assert len(new) > len(old) and all(new[k] == v for k, v in old.items())
    assert [r for r in after["usdm_income"] if r["time"] <= before["as_of_ms"]] == before["usdm_income"]
    assert max(t["time"] for t in after["usdm_trades"]) > NOW


def test_user_trades_rules(ex: Exchange) -> None:
    rows = ex.ledger("usdm").trades["BTCUSDT"]
    now = ex.clock.market()
    week = _ask(ex, "usdm", "trades", symbol="BTCUSDT", limit=1000)
    assert week == [t for t in rows if now - 7 * DAY_MS <= t["time"] <= now]  # no times: the last 7 days
    first = rows[0]["id"]
    page = _ask(ex, "usdm", "trades", symbol="BTCUSDT", fromId=first, limit=3)
    recent = [t for t in rows if t["time"] >= now - 90 * DAY_MS]
    assert page == recent[:3]  # older than 90 days: gone from REST
    oid = recent[0]["orderId"]
    assert _ask(ex, "usdm", "trades", symbol="BTCUSDT", orderId=oid) == [t for t in recent if t["orderId"] == oid]
    lo = now - 20 * DAY_MS
    assert _ask(ex, "usdm", "trades", symbol="BTCUSDT", startTime=lo, endTime=lo + 7 * DAY_MS - 1, limit=1000) == [
        t for t in rows if lo <= t["time"] <= lo + 7 * DAY_MS - 1
    ]
    for params, code in (
        ({"startTime": lo, "endTime": lo + 7 * DAY_MS + 1}, -4165),
        ({"fromId": 1, "startTime": lo}, -1128),
        ({}, -1102),
    ):
        with pytest.raises(ApiError) as err:
            _ask(ex, "usdm", "trades", **({"symbol": "BTCUSDT"} if params else {}), **params)
        assert err.value.code == code
    assert ex.endpoints["/fapi/v1/userTrades"].weight(Params({})) == 5
    assert ex.endpoints["/papi/v1/um/userTrades"].weight(Params({})) == 5


def test_six_month_trade_retention_is_a_variant() -> None:
    ex = Exchange(SandboxConfig(now_ms=NOW, history_days=3, futures_history_days=200, futures_trade_retention_days=180))
    rows = ex.ledger("usdm").trades["BTCUSDT"]
    got = _ask(ex, "usdm", "trades", symbol="BTCUSDT", fromId=0, limit=1000)
    assert got[0] == next(t for t in rows if t["time"] >= NOW - 180 * DAY_MS)
    assert got[0]["time"] < NOW - 100 * DAY_MS


def test_income_rules(ex: Exchange) -> None:
    led = ex.ledger("pm_um")
    now = ex.clock.market()
    assert _ask(ex, "pm_um", "income", limit=1000) == led.income_between(now - 7 * DAY_MS, now)[:1000]
    lo = now - 200 * DAY_MS
    got = _ask(ex, "pm_um", "income", startTime=lo, endTime=now - 80 * DAY_MS, limit=1000)
    assert got and min(r["time"] for r in got) >= now - 90 * DAY_MS  # three months only
    funding = _ask(ex, "pm_um", "income", incomeType="FUNDING_FEE", startTime=now - DAY_MS, endTime=now, limit=1000)
    assert funding and {r["incomeType"] for r in funding} == {"FUNDING_FEE"}
    page2 = _ask(ex, "pm_um", "income", startTime=now - 5 * DAY_MS, endTime=now, limit=10, page=2)
    assert page2 == led.income_between(now - 5 * DAY_MS, now)[10:20]

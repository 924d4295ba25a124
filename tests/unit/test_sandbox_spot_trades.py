"""The sandbox's spot trades: consistent with its orders, and ``myTrades`` answers by Binance's rules
(docs/binance-facts.md §Spot myTrades)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from pipeline.sandbox.auth import ApiError
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.core import Exchange, Params

NOW = 1_790_000_000_000


@pytest.fixture(scope="module")
def ex() -> Exchange:
    return Exchange(SandboxConfig(now_ms=NOW, listed_symbols=40, history_days=30, busy_day_orders=1500))


def _ask(ex: Exchange, **params) -> list[dict]:
    return ex.spot_my_trades(Params({k: str(v) for k, v in params.items()}))


def test_trades_add_up_to_every_order(ex: Exchange) -> None:
    truth = ex.truth()
    qty: Counter = Counter()
    quote: Counter = Counter()
    count: Counter = Counter()
    for t in truth["spot_trades"] + truth["delisted_trades"]:
        key = (t["symbol"], t["orderId"])
        qty[key] += Decimal(t["qty"])
        quote[key] += Decimal(t["quoteQty"])
        count[key] += 1
    filled = [o for o in truth["spot_orders"] + truth["delisted_orders"] if Decimal(o["executedQty"]) > 0]
    assert len(filled) > 1000
    for o in filled:
        key = (o["symbol"], o["orderId"])
        assert qty[key] == Decimal(o["executedQty"]), o
        assert quote[key] == Decimal(o["cummulativeQuoteQty"]), o
    unfilled = {(o["symbol"], o["orderId"]) for o in truth["spot_orders"] if Decimal(o["executedQty"]) == 0}
    assert not unfilled & set(qty)
    statuses = {o["status"] for o in filled}
    assert {"FILLED", "CANCELED", "PARTIALLY_FILLED"} <= statuses  # partial fills of open and canceled orders
    assert max(count.values()) >= 4  # several fills per order


def test_fills_lie_within_the_order_and_commissions_use_every_asset_kind(ex: Exchange) -> None:
    truth = ex.truth()
    orders = {(o["symbol"], o["orderId"]): o for o in truth["spot_orders"]}
    kinds: Counter = Counter()
    for t in truth["spot_trades"]:
        o = orders[(t["symbol"], t["orderId"])]
        assert o["time"] <= t["time"] <= o["updateTime"]
        assert t["isBuyer"] == (o["side"] == "BUY")
        base, quote = ex.account.symbols[t["symbol"]].base, ex.account.symbols[t["symbol"]].quote
        kinds["bnb" if t["commissionAsset"] == "BNB" else "base" if t["commissionAsset"] == base else "quote"] += 1
        assert t["commissionAsset"] in ("BNB", base, quote)
    assert min(kinds.values()) > 100, kinds
    for o in truth["spot_orders"]:
        if o["status"] == "FILLED" and Decimal(o["executedQty"]) > 0:
            last = max(t["time"] for t in ex.account.spot_trades[o["symbol"]].by_order[o["orderId"]])
            assert last == o["updateTime"]


def test_ids_grow_with_time(ex: Exchange) -> None:
    for book in ex.account.spot_trades.values():
        assert book.times == sorted(book.times)
        assert book.ids == sorted(set(book.ids))


def test_paging_by_id_order_and_window(ex: Exchange) -> None:
    sym = ex.truth()["busy_day"]["symbol"]
    book = ex.account.spot_trades[sym]
    first = _ask(ex, symbol=sym, fromId=0, limit=1000)
    assert len(first) == 1000 and first == book.trades[:1000]
    assert _ask(ex, symbol=sym, fromId=first[-1]["id"] + 1, limit=3) == book.trades[1000:1003]
    oid, rows = max(book.by_order.items(), key=lambda kv: len(kv[1]))
    assert _ask(ex, symbol=sym, orderId=oid) == rows
    assert _ask(ex, symbol=sym, orderId=oid, fromId=rows[-1]["id"]) == rows[-1:]
    assert _ask(ex, symbol=sym, orderId=oid, limit=1) == rows[:1]
    day0 = ex.truth()["busy_day"]["day_start_ms"]
    window = _ask(ex, symbol=sym, startTime=day0, endTime=day0 + 86_400_000 - 1, limit=1000)
    assert len(window) == 1000  # busy day: a full page, the caller pages on
    assert window == [t for t in book.trades if day0 <= t["time"]][:1000]
    assert _ask(ex, symbol=sym, endTime=day0, limit=2) == [t for t in book.trades if t["time"] <= day0][-2:]
    assert _ask(ex, symbol=sym, limit=5) == book.trades[-5:]  # no filter: the most recent


@pytest.mark.parametrize(
    "params",
    [
        {"fromId": 1, "startTime": 1},
        {"fromId": 1, "endTime": 1},
        {"orderId": 1, "startTime": 1},
        {"orderId": 1, "startTime": 1, "endTime": 2},
    ],
)
def test_unsupported_combinations_are_refused(ex: Exchange, params: dict) -> None:
    with pytest.raises(ApiError) as err:
        _ask(ex, symbol="BTCUSDT", **params)
    assert err.value.code == -1128


def test_window_longer_than_24_hours_and_unknown_symbols_are_refused(ex: Exchange) -> None:
    with pytest.raises(ApiError) as err:
        _ask(ex, symbol="BTCUSDT", startTime=NOW - 86_400_001, endTime=NOW)
    assert err.value.code == -1127
    assert _ask(ex, symbol="BTCUSDT", startTime=NOW - 86_400_000, endTime=NOW) is not None
    for symbol in ("NOPEUSDT", ex.truth()["delisted"][0]):
        with pytest.raises(ApiError) as err:
            _ask(ex, symbol=symbol)
        assert err.value.code == -1121


def test_weight_is_5_with_order_id_else_20(ex: Exchange) -> None:
    ep = ex.endpoints["/api/v3/myTrades"]
    assert ep.weight(Params({"symbol": "BTCUSDT", "orderId": "1"})) == 5
    assert ep.weight(Params({"symbol": "BTCUSDT", "fromId": "1"})) == 20
    assert Exchange.WS_METHODS["myTrades"] == "/api/v3/myTrades"

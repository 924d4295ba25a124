"""Generated account shape and the allOrders / allOrderList / order / openOrders semantics against the truth."""

from __future__ import annotations

import itertools
from collections import Counter
from decimal import Decimal

import pytest

from pipeline.sandbox.testing import SignedClient, start_sandbox

DAY = 86_400_000


@pytest.fixture(scope="module")
def sx():
    # 120 days so that the 90-day archive rule has victims; a smaller busy day keeps it fast
    with start_sandbox(
        listed_symbols=80,
        active_symbols=6,
        history_days=120,
        orders_per_day=6,
        busy_day_orders=1200,
        spot_weight_limit=1_000_000,
        futures_weight_limit=1_000_000,
        papi_weight_limit=1_000_000,
    ) as sx:
        yield sx


@pytest.fixture(scope="module")
def truth(sx):
    return sx.truth()


@pytest.fixture(scope="module")
def c(sx):
    return SignedClient(sx.url)


def _visible(truth, symbol):
    return sorted(
        (o for o in truth["spot_orders"] if o["symbol"] == symbol and not o["archived"]), key=lambda o: o["orderId"]
    )


def _strip(o):
    return {k: v for k, v in o.items() if k != "archived"}


def test_account_shape(truth):
    orders = truth["spot_orders"]
    assert {o["status"] for o in orders} >= {
        "NEW",
        "PARTIALLY_FILLED",
        "FILLED",
        "CANCELED",
        "EXPIRED",
        "EXPIRED_IN_MATCH",
        "REJECTED",
    }
    assert {o["type"] for o in orders} == {"LIMIT", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER"}
    for o in orders:
        for f in (
            "price",
            "origQty",
            "executedQty",
            "cummulativeQuoteQty",
            "stopPrice",
            "icebergQty",
            "origQuoteOrderQty",
        ):
            whole, frac = o[f].split(".")
            assert len(frac) == 8 and whole.isdigit(), (f, o[f])
        assert o["updateTime"] >= o["time"]
        assert Decimal(o["executedQty"]) <= Decimal(o["origQty"])
        if o["status"] == "FILLED":
            assert o["executedQty"] == o["origQty"]
        if Decimal(o["executedQty"]) == 0:
            assert Decimal(o["cummulativeQuoteQty"]) == 0
        if o["type"] == "LIMIT" and o["orderListId"] == -1 and Decimal(o["executedQty"]):
            # limit fills at the limit price: exact product, no rounding
            assert Decimal(o["cummulativeQuoteQty"]) == Decimal(o["price"]) * Decimal(o["executedQty"])
        if o["type"] in ("STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
            assert Decimal(o["stopPrice"]) > 0
    # ids increase with time per symbol
    by_symbol: dict[str, list] = {}
    for o in orders:
        by_symbol.setdefault(o["symbol"], []).append(o)
    for rows in by_symbol.values():
        rows.sort(key=lambda o: o["orderId"])
        assert all(a["time"] <= b["time"] for a, b in itertools.pairwise(rows))
    # realistic magnitudes: BTC ~ 60000, some sub-cent coins
    btc = [Decimal(o["price"]) for o in by_symbol.get("BTCUSDT", []) if Decimal(o["price"]) > 0]
    assert btc and 30_000 < sum(btc) / len(btc) < 120_000
    # updated on a later UTC day than placed
    assert sum(1 for o in orders if o["updateTime"] // DAY > o["time"] // DAY) > 20
    # busy day: more than busy_day_orders updates on one symbol in one UTC day
    busy = truth["busy_day"]
    n = sum(
        1 for o in orders if o["symbol"] == busy["symbol"] and o["updateTime"] // DAY == busy["day_start_ms"] // DAY
    )
    assert n > 1200
    # OCO lists with 2 legs whose orders carry the orderListId
    lists = truth["spot_order_lists"]
    assert lists and all(len(x["orders"]) == 2 for x in lists)
    legs = {(o["symbol"], o["orderId"]): o for o in orders}
    for lst in lists:
        for leg in lst["orders"]:
            assert legs[(leg["symbol"], leg["orderId"])]["orderListId"] == lst["orderListId"]
    assert any(o.get("trailingDelta") for o in orders) and any(o.get("expiryReason") for o in orders)
    assert any(o.get("strategyId") for o in orders)


def test_archive_rule(sx, c, truth):
    archived = [o for o in truth["spot_orders"] if o["archived"]]
    assert archived
    for o in archived[:5]:
        assert o["status"] in ("CANCELED", "EXPIRED", "EXPIRED_IN_MATCH") and Decimal(o["executedQty"]) == 0
        assert o["updateTime"] < truth["generated_at_ms"] - 90 * DAY
        r = c.get("/api/v3/order", {"symbol": o["symbol"], "orderId": o["orderId"]})
        assert r.status_code == 400 and r.json()["code"] == -2026
        page = c.get("/api/v3/allOrders", {"symbol": o["symbol"], "orderId": o["orderId"], "limit": 5}).json()
        assert o["orderId"] not in {x["orderId"] for x in page}
    live = next(o for o in truth["spot_orders"] if not o["archived"])
    assert c.get("/api/v3/order", {"symbol": live["symbol"], "orderId": live["orderId"]}).json() == _strip(live)
    by_client = c.get("/api/v3/order", {"symbol": live["symbol"], "origClientOrderId": live["clientOrderId"]})
    assert by_client.json()["orderId"] == live["orderId"]


def test_order_id_paging_is_complete(c, truth):
    sym = truth["busy_day"]["symbol"]
    want = _visible(truth, sym)
    got, cursor = [], 0
    while True:
        page = c.get("/api/v3/allOrders", {"symbol": sym, "orderId": cursor, "limit": 1000}).json()
        got += page
        if len(page) < 1000:
            break
        assert [o["orderId"] for o in page] == sorted(o["orderId"] for o in page)
        cursor = page[-1]["orderId"] + 1
    assert got == [_strip(o) for o in want]


def test_time_windows_filter_on_update_time_and_page(c, truth):
    busy = truth["busy_day"]
    sym, d0 = busy["symbol"], busy["day_start_ms"]
    want = sorted(
        (o for o in _visible(truth, sym) if d0 <= o["updateTime"] <= d0 + DAY - 1),
        key=lambda o: (o["updateTime"], o["orderId"]),
    )
    assert len(want) > 1000
    got, start = [], d0
    seen = set()
    while True:
        page = c.get(
            "/api/v3/allOrders", {"symbol": sym, "startTime": start, "endTime": d0 + DAY - 1, "limit": 1000}
        ).json()
        assert [o["updateTime"] for o in page] == sorted(o["updateTime"] for o in page)
        new = [o for o in page if o["orderId"] not in seen]
        got += new
        seen |= {o["orderId"] for o in new}
        if len(page) < 1000:
            break
        start = page[-1]["updateTime"]
    assert got == [_strip(o) for o in want]
    # orderId is ignored when times are given
    with_id = c.get(
        "/api/v3/allOrders", {"symbol": sym, "startTime": d0, "endTime": d0 + DAY - 1, "limit": 3, "orderId": 10**15}
    ).json()
    assert with_id == [_strip(o) for o in want[:3]]
    # an order placed on day D but updated on D+k shows up in the D+k window only
    late = next(o for o in _visible(truth, sym) if o["updateTime"] // DAY > o["time"] // DAY)
    day_placed = late["time"] // DAY * DAY
    placed = c.get(
        "/api/v3/allOrders", {"symbol": sym, "startTime": day_placed, "endTime": day_placed + DAY - 1, "limit": 1000}
    ).json()
    assert late["orderId"] not in {o["orderId"] for o in placed}


def test_no_params_returns_most_recent_ascending(c, truth):
    sym = truth["active"][1]
    want = _visible(truth, sym)[-7:]
    assert c.get("/api/v3/allOrders", {"symbol": sym, "limit": 7}).json() == [_strip(o) for o in want]
    default = c.get("/api/v3/allOrders", {"symbol": sym}).json()
    assert len(default) == min(500, len(_visible(truth, sym)))


def test_open_orders_are_the_new_and_partial_ones(c, truth):
    want = sorted(
        (o["symbol"], o["orderId"]) for o in truth["spot_orders"] if o["status"] in ("NEW", "PARTIALLY_FILLED")
    )
    r = c.get("/api/v3/openOrders")
    assert r.status_code == 200
    assert sorted((o["symbol"], o["orderId"]) for o in r.json()) == want
    assert r.headers["X-MBX-USED-WEIGHT-1M"]
    sym = truth["active"][0]
    one = c.get("/api/v3/openOrders", {"symbol": sym}).json()
    assert all(o["symbol"] == sym for o in one)


def test_order_lists(c, truth):
    lists = truth["spot_order_lists"]
    got = c.get("/api/v3/allOrderList", {"fromId": 0, "limit": 1000}).json()
    assert got == lists[:1000]
    lst = lists[len(lists) // 2]
    t = lst["transactionTime"]
    window = c.get("/api/v3/allOrderList", {"startTime": t, "endTime": t}).json()
    assert lst in window
    assert c.get("/api/v3/orderList", {"orderListId": lst["orderListId"]}).json() == lst
    open_lists = c.get("/api/v3/openOrderList").json()
    assert open_lists == [x for x in lists if x["listOrderStatus"] == "EXECUTING"]


def test_account_balances_hide_two_active_symbols(c, truth):
    acct = c.get("/api/v3/account").json()
    held = {b["asset"] for b in acct["balances"]}
    hidden = truth["hidden_active"]
    assert len(hidden) == 2
    info = {s["symbol"]: s for s in c.get("/api/v3/exchangeInfo", signed=False).json()["symbols"]}
    for sym in truth["active"]:
        assert (info[sym]["baseAsset"] in held) == (sym not in hidden)
    nonzero = c.get("/api/v3/account", {"omitZeroBalances": "true"}).json()["balances"]
    assert len(nonzero) < len(acct["balances"])


def test_exchange_info_filters(c, truth):
    r = c.get("/api/v3/exchangeInfo", {"symbols": '["BTCUSDT","ETHUSDT"]'}, signed=False)
    assert [s["symbol"] for s in r.json()["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    r = c.get("/api/v3/exchangeInfo", {"symbol": "NOPE"}, signed=False)
    assert r.json()["code"] == -1121
    full = c.get("/api/v3/exchangeInfo", signed=False).json()
    assert len(full["symbols"]) == 80 and all(s["status"] == "TRADING" for s in full["symbols"])


def test_futures_orders_shape_and_rest_retention(c, truth):
    for market, path in (("usdm_orders", "/fapi/v1/allOrders"), ("pm_um_orders", "/papi/v1/um/allOrders")):
        rows = truth[market]
        assert len(rows) > 500
        assert all(o["time"] % 1000 == 0 and o["updateTime"] % 1000 == 0 for o in rows)
        assert all(o["orderId"] > 2**53 for o in rows)
        trailing = [o for o in rows if o["type"] == "TRAILING_STOP_MARKET"]
        assert trailing and all("activatePrice" in o and "priceRate" in o for o in trailing)
        assert all("activatePrice" not in o for o in rows if o["type"] != "TRAILING_STOP_MARKET")
        now = truth["as_of_ms"]  # the market clock: it stands still unless a test advances it
        start = now - 5 * DAY
        symbols = sorted({o["symbol"] for o in rows}) if market == "pm_um_orders" else [None]  # PM needs symbol
        got = []
        for sym in symbols:
            params = {"startTime": start, "endTime": now, "limit": 1000} | ({"symbol": sym} if sym else {})
            got += c.get(path, params).json()
        want = [
            o
            for o in rows
            if start <= o["time"] <= now
            and not (
                o["status"] in ("CANCELED", "EXPIRED") and Decimal(o["executedQty"]) == 0 and o["time"] < now - 3 * DAY
            )
        ]
        assert sorted(got, key=lambda o: o["orderId"]) == sorted(want, key=lambda o: o["orderId"])
        old = c.get(path, {"symbol": rows[0]["symbol"], "startTime": now - 100 * DAY, "endTime": now - 95 * DAY}).json()
        assert old == []  # older than 90 days: only the export has them
        sym = rows[-1]["symbol"]
        by_id = c.get(path, {"symbol": sym, "orderId": rows[-1]["orderId"]}).json()
        assert by_id and by_id[0]["orderId"] == rows[-1]["orderId"]
    counts = Counter(o["status"] for o in truth["usdm_orders"])
    assert counts["FILLED"] and counts["CANCELED"] and counts["EXPIRED"]

"""The sandbox's futures time model and REST reads: state as of the clock, retention, windows, variants."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.core import Exchange
from pipeline.sandbox.testing import SignedClient, start_sandbox

DAY = 86_400_000
NOW = 1_760_000_000_000
SHAPE = {"listed_symbols": 20, "active_symbols": 2, "history_days": 3, "busy_day_orders": 10}


def _get(sx, client: SignedClient, path: str, params: dict | None = None):
    """A signed GET stamped with the sandbox's wire clock (it moves when a test advances it)."""
    return client.get(path, {**(params or {}), "timestamp": sx.exchange.clock.wire()})


@pytest.fixture(scope="module")
def sx():
    with start_sandbox(futures_history_days=120, **SHAPE) as sx:
        yield sx


@pytest.fixture(scope="module")
def client(sx):
    return SignedClient(sx.url)


def test_histories_do_not_depend_on_how_the_clock_was_advanced() -> None:
    one = Exchange(SandboxConfig(now_ms=NOW, futures_history_days=30, **SHAPE))
    other = Exchange(SandboxConfig(now_ms=NOW, futures_history_days=30, **SHAPE))
    one.clock.advance(days=10)
    for _ in range(40):
        other.clock.advance(days=0.25)
    assert one.truth(NOW + 10 * DAY)["usdm_orders"] == other.truth(NOW + 10 * DAY)["usdm_orders"]
    before = one.truth(NOW)
    assert (
        before["usdm_orders"]
        == Exchange(SandboxConfig(now_ms=NOW, futures_history_days=30, **SHAPE)).truth(NOW)["usdm_orders"]
    )
    later = {o["orderId"]: o for o in one.truth(NOW + 10 * DAY)["usdm_orders"]}
    assert len(later) > len(before["usdm_orders"])  # new orders appeared
    moved = [o for o in before["usdm_orders"] if later[o["orderId"]]["status"] != o["status"]]
    assert moved and all(o["status"] in ("NEW", "PARTIALLY_FILLED") for o in moved)  # open orders progressed


def test_every_order_state_is_a_step_of_its_versions() -> None:
    truth = Exchange(SandboxConfig(now_ms=NOW, futures_history_days=60, **SHAPE)).truth()
    versions: dict[int, list[dict]] = {}
    for v in truth["usdm_versions"]:
        versions.setdefault(v["orderId"], []).append(v)
    for o in truth["usdm_orders"]:
        steps = versions[o["orderId"]]
        assert steps[-1] == o and steps[0]["updateTime"] == o["time"]
        assert [s["updateTime"] for s in steps] == sorted(s["updateTime"] for s in steps)
        assert Decimal(o["executedQty"]) <= Decimal(o["origQty"]) or o["closePosition"]
    statuses = {o["status"] for o in truth["usdm_orders"]}
    assert statuses >= {"NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED"}


def test_late_finals_can_be_switched_off() -> None:
    def late(cfg: SandboxConfig) -> int:
        truth = Exchange(cfg).truth()
        return sum(
            1
            for o in truth["usdm_orders"]
            if (o["status"] in ("CANCELED", "EXPIRED") and Decimal(o["executedQty"]) == 0)
            and o["updateTime"] - o["time"] > 3 * DAY
        )

    base = SandboxConfig(now_ms=NOW, futures_history_days=200, **SHAPE)
    assert late(base) > 0
    assert late(base.with_overrides(futures_late_finals=False)) == 0


def test_all_orders_and_order_apply_the_retention_as_of_the_clock(sx, client) -> None:
    now = sx.exchange.clock.market()
    truth = sx.truth()
    zero = [
        o
        for o in truth["usdm_orders"]
        if o["status"] == "CANCELED" and Decimal(o["executedQty"]) == 0 and now - 80 * DAY < o["time"] < now - 4 * DAY
    ]
    assert zero
    gone = zero[-1]
    week = {"symbol": gone["symbol"], "startTime": gone["time"] - 1000, "endTime": gone["time"] + 1000}
    assert gone["orderId"] not in {o["orderId"] for o in _get(sx, client, "/fapi/v1/allOrders", week).json()}
    r = _get(sx, client, "/fapi/v1/order", {"symbol": gone["symbol"], "orderId": gone["orderId"]})
    assert r.status_code == 400 and r.json()["code"] == -2013
    filled = next(o for o in reversed(truth["usdm_orders"]) if o["status"] == "FILLED" and o["time"] < now - 5 * DAY)
    got = _get(sx, client, "/fapi/v1/order", {"symbol": filled["symbol"], "orderId": filled["orderId"]}).json()
    assert got == filled
    old = next(o for o in truth["usdm_orders"] if o["status"] == "FILLED" and o["time"] < now - 91 * DAY)
    r = _get(sx, client, "/fapi/v1/order", {"symbol": old["symbol"], "orderId": old["orderId"]})
    assert r.json()["code"] == -2013  # created more than 90 days ago


def test_windows_less_than_seven_days_and_pm_needs_a_symbol(sx, client) -> None:
    now = sx.exchange.clock.market()
    seven = {"symbol": "BTCUSDT", "startTime": now - 7 * DAY, "endTime": now}
    assert _get(sx, client, "/fapi/v1/allOrders", seven).json()["code"] == -4165
    assert _get(sx, client, "/fapi/v1/allOrders", {**seven, "endTime": now - 1}).status_code == 200
    r = _get(sx, client, "/papi/v1/um/allOrders", {"startTime": now - DAY, "endTime": now})
    assert r.json()["code"] == -1102 and "symbol" in r.json()["msg"]
    assert _get(sx, client, "/papi/v1/um/allOrders", {"symbol": "BTCUSDT"}).status_code == 200
    assert _get(sx, client, "/fapi/v1/allOrders", {"startTime": now - DAY, "endTime": now}).status_code == 200


def test_the_other_variants() -> None:
    opts = {
        "futures_window_rule": "at_most",
        "usdm_symbol_required": True,
        "futures_window_field": "updateTime",
        "futures_order_id_in_window": "ignore",
    }
    with start_sandbox(futures_history_days=30, **SHAPE, **opts) as sx:
        c = SignedClient(sx.url)
        now = sx.exchange.clock.market()
        assert _get(sx, c, "/fapi/v1/allOrders", {"startTime": now - DAY, "endTime": now}).json()["code"] == -1102
        seven = {"symbol": "BTCUSDT", "startTime": now - 7 * DAY, "endTime": now}
        rows = _get(sx, c, "/fapi/v1/allOrders", seven | {"limit": 1000}).json()
        assert rows and all(now - 7 * DAY <= o["updateTime"] <= now for o in rows)
        want = [o for o in sx.truth()["usdm_orders"] if o["symbol"] == "BTCUSDT" and now - 7 * DAY <= o["updateTime"]]
        assert sorted(o["orderId"] for o in rows) == sorted(o["orderId"] for o in want if _rest_visible(o, now))
        ignored = _get(sx, c, "/fapi/v1/allOrders", seven | {"orderId": rows[-1]["orderId"], "limit": 1000}).json()
        assert ignored == rows  # orderId ignored when a window is given


def _rest_visible(o: dict, now: int) -> bool:
    zero = Decimal(o["executedQty"]) == 0 and o["status"] in ("CANCELED", "EXPIRED")
    return o["time"] >= now - 90 * DAY and not (zero and o["time"] < now - 3 * DAY)


def test_advancing_the_clock_moves_orders_open_orders_positions_and_income(sx, client) -> None:
    before = sx.exchange.clock.market()
    open_before = _get(sx, client, "/fapi/v1/openOrders").json()
    assert open_before and all(o["status"] in ("NEW", "PARTIALLY_FILLED") for o in open_before)
    assert sx.exchange.clock.market() == before  # the market clock stands still by itself
    r = client.session.post(f"{sx.url}/sandbox/clock/advance?days=2")
    assert r.json()["market_ms"] == before + 2 * DAY
    open_after = {o["orderId"]: o for o in _get(sx, client, "/fapi/v1/openOrders").json()}
    changed = [o for o in open_before if o["orderId"] not in open_after]
    assert changed  # some open orders ended in those two days
    ended = changed[0]
    got = _get(sx, client, "/fapi/v1/order", {"symbol": ended["symbol"], "orderId": ended["orderId"]})
    assert got.status_code == 400 or got.json()["status"] not in ("NEW", "PARTIALLY_FILLED")
    positions = _get(sx, client, "/fapi/v3/account").json()["positions"]
    assert positions and all(set(p) >= {"symbol", "positionAmt"} for p in positions)
    income = _get(sx, client, "/fapi/v1/income", {"startTime": before - 7 * DAY, "endTime": before}).json()
    assert income and {r["incomeType"] for r in income} == {"COMMISSION"}
    assert {r["symbol"] for r in income} <= {o["symbol"] for o in sx.truth()["usdm_orders"]}
    pm = _get(sx, client, "/papi/v1/um/account").json()
    assert "positions" in pm

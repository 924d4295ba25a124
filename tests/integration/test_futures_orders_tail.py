"""Integration: the USDⓈ-M and PM orders REST tail against the sandbox, under every reading of ``allOrders``.

Each variant the sandbox serves (what a window filters, ``orderId`` with a window, "less than" or "at most" 7 days,
a symbol-less USDⓈ-M call refused or served, whole-second or millisecond times) must give the lake the truth: every
order created on the days REST serves whole, in its state at the sandbox clock. A full page (1000) is followed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import pipeline.binance as binance
import pipeline.sandbox.testing as testing
from pipeline.futures import state
from pipeline.futures.orders_tail import run_futures_orders_tail
from pipeline.futures.stored import latest_orders
from pipeline.sandbox.universe import FUTURES_SYMBOLS
from pipeline.settings import Settings
from pipeline.times import DAY_MS, day_of, day_start_ms, days_between

pytestmark = pytest.mark.slow
# The market clock at a fixed instant (serverTime follows it; the client syncs to it), not the wall clock: REST
# serves a day whole (zero-fill cancels included) until 3 days less a minute after it starts, so the day before
# yesterday is complete only before 23:59; and the account is generated per day, so whether an order is still
# open for a later run to refresh depends on the date (on some dates none is, in PM).
AT = int(datetime(2026, 6, 15, 13, tzinfo=UTC).timestamp() * 1000)
SHAPE = {
    "listed_symbols": 20,
    "history_days": 2,
    "futures_history_days": 30,
    "futures_late_finals": False,
    "now_ms": AT,
    "server_time_at_market": True,
}
QUIET = lambda line: None  # noqa: E731


def _client(sx, data_dir: Path) -> binance.BinanceClient:
    env = testing.sandbox_env(sx, data_dir)
    env["ORDERLAKE_BUDGET_DIR"] = str(data_dir / "budget")
    return binance.BinanceClient.from_settings(Settings.from_env(env))


def _run(sx, data_dir: Path, days: list, *, symbolless: bool = False, markets=("usdm", "pm_um")) -> dict:
    now = sx.exchange.clock.market()
    out = {}
    with _client(sx, data_dir) as client:
        for market in markets:
            api = client.futures if market == "usdm" else client.papi
            symbols = [s[0] for s in (FUTURES_SYMBOLS if market == "usdm" else FUTURES_SYMBOLS[:6])]
            out[market] = run_futures_orders_tail(
                api,
                market=market,
                data_dir=data_dir,
                account="main",
                days=days,
                now_ms=now,
                symbols=symbols,
                symbolless=symbolless,
                log=QUIET,
            )
    return out


def _lake(data_dir: Path, market: str) -> dict:
    table = "futures_orders" if market == "usdm" else "pm_um_orders"
    return {k: (o.status, o.update_ms) for k, o in latest_orders(data_dir, "main", table).items()}


def _truth(sx, market: str, days: list) -> dict:
    lo, hi = day_start_ms(days[0]), day_start_ms(days[-1]) + DAY_MS
    return {
        (o["symbol"], o["orderId"]): (o["status"], o["updateTime"])
        for o in sx.truth()[f"{market}_orders"]
        if lo <= o["time"] < hi
    }


def _three_days(sx) -> list:
    today = day_of(sx.exchange.clock.market())
    return days_between(today - timedelta(days=2), today - timedelta(days=1))


VARIANTS = [
    {},
    {"futures_window_field": "updateTime"},
    {"futures_order_id_in_window": "ignore"},
    {"futures_window_rule": "at_most"},
    {"usdm_symbol_required": True},
    {"futures_time_precision_ms": 1},
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) or "default")
def test_lake_equals_truth_under_each_variant(variant, tmp_path) -> None:
    with testing.start_sandbox(**SHAPE, **variant) as sx:
        days = _three_days(sx)
        symbolless = "usdm_symbol_required" in variant or not variant
        results = _run(sx, tmp_path, days, symbolless=symbolless)
        for market in ("usdm", "pm_um"):
            want = _truth(sx, market, days)
            assert want, "the sandbox account has orders on these days"
            got = {k: v for k, v in _lake(tmp_path, market).items() if k in want}
            assert got == want
            assert results[market].complete == days
        if symbolless:
            served = not variant.get("usdm_symbol_required", False)
            assert results["usdm"].symbolless is served
            assert state.load(tmp_path, "main", "usdm")["symbolless"] is served
        assert results["pm_um"].symbolless is None  # PM always requires the symbol: never tried


@pytest.mark.parametrize("window_field", ["time", "updateTime"])
def test_full_pages_are_followed(window_field, tmp_path) -> None:
    """More than 1000 orders in one window of one symbol: the walk by orderId goes on."""
    with testing.start_sandbox(
        **{**SHAPE, "futures_history_days": 6}, futures_orders_per_day=3000.0, futures_window_field=window_field
    ) as sx:
        days = _three_days(sx)
        results = _run(sx, tmp_path, days, markets=("usdm",))
        want = _truth(sx, "usdm", days)
        assert max(sum(1 for k in want if k[0] == s) for s in {k[0] for k in want}) > 1000
        got = {k: v for k, v in _lake(tmp_path, "usdm").items() if k in want}
        assert got == want
        assert results["usdm"].cost.calls["all_orders"] > len(FUTURES_SYMBOLS)


def test_open_orders_are_refreshed_and_vanished_ones_recorded(tmp_path) -> None:
    """Day by day as the clock advances: an order open at one run shows its later state at the next; with late
    zero-fill ends on, an order REST stops showing is recorded as vanished, not left silently open."""
    with testing.start_sandbox(**{**SHAPE, "futures_late_finals": True}) as sx:
        _run(sx, tmp_path, _three_days(sx))
        for _ in range(6):
            sx.advance(days=1)
            yesterday = day_of(sx.exchange.clock.market()) - timedelta(days=1)
            results = _run(sx, tmp_path, [yesterday])
        now = sx.exchange.clock.market()
        for market in ("usdm", "pm_um"):
            truth = {(o["symbol"], o["orderId"]): o for o in sx.truth()[f"{market}_orders"]}
            lake = _lake(tmp_path, market)
            vanished = set(state.load(tmp_path, "main", market).get("vanished", {}))
            assert results[market].refreshed > 0
            for key, (status, update) in lake.items():
                t = truth[key]
                if (t["status"], t["updateTime"]) != (status, update):
                    # the lake lags only where REST cannot see: an order that vanished
                    assert f"{key[0]}:{key[1]}" in vanished, (key, status, t["status"])
                    assert t["status"] in ("CANCELED", "EXPIRED") and now - t["time"] > 3 * DAY_MS

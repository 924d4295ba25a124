"""Integration: spot trades from the lake's orders against the sandbox, over REST and the WS API.

Acceptance (issue 13): the lake's trades equal the sandbox's truth and what python-binance's ``get_my_trades``
returns over every symbol; every filled order's trades add up to its executed quantity; the run costs at most a fifth
of 24 h windows over the active symbols and less than one ``orderId`` call per filled order.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from binance.client import Client

import pipeline.binance as binance
import pipeline.sandbox.testing as testing
from pipeline.settings import Settings
from pipeline.spot.backfill import backfill_spot
from pipeline.storage import lake
from pipeline.times import day_of
from pipeline.trades.spot_backfill import backfill_spot_trades, mismatches
from pipeline.trades.stored import filled_orders, stored_trades
from tests.support.trades import api_shape, lake_shape

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sandbox():
    with testing.start_sandbox(
        listed_symbols=60, active_symbols=12, history_days=60, busy_day_orders=2500, time_scale=60.0
    ) as sx:
        yield sx


def _client(sx, data_dir: Path) -> binance.BinanceClient:
    env = testing.sandbox_env(sx, data_dir)
    env["ORDERLAKE_BUDGET_DIR"] = str(data_dir / "budget")
    return binance.BinanceClient.from_settings(Settings.from_env(env))


def _lake_trades(data_dir: Path) -> list[dict]:
    found = lake.account_dataset(data_dir, "spot_trades", "main")  # wherever the lake lives
    return found.to_table().to_pylist() if found is not None else []


def _backfill(sx, data_dir: Path, transport: str):
    client = _client(sx, data_dir)
    api = client.spot_api(transport)
    truth = sx.truth()
    now = client.spot.server_time()
    end = day_of(now)
    start = end - timedelta(days=sx.cfg.history_days + 1)
    quiet = lambda line: None  # noqa: E731
    backfill_spot(api, data_dir=data_dir, account="main", start=start, end=end, explicit=truth["delisted"], log=quiet)
    before = client.weight_used()["spot"]
    result = backfill_spot_trades(
        api, data_dir=data_dir, account="main", start=start, end=end, now_ms=now, transport=transport, log=quiet
    )
    spent = client.weight_used()["spot"] - before
    client.close()
    return result, spent


def test_rest_trades_equal_truth_python_binance_and_orders(sandbox, tmp_path):
    result, spent = _backfill(sandbox, tmp_path, "rest")
    truth = sandbox.truth()
    got = sorted(lake_shape(r) for r in _lake_trades(tmp_path))
    want = sorted(api_shape(t) for t in truth["spot_trades"])
    assert len(got) == len(want) > 5000
    assert got == want  # every row, decimal and time

    client = Client(sandbox.cfg.api_key, sandbox.cfg.api_secret, ping=False)
    client.API_URL = sandbox.url + "/api"
    theirs = []
    for symbol in truth["listed"]:
        from_id = 0
        while True:
            page = client.get_my_trades(symbol=symbol, fromId=from_id, limit=1000)
            theirs += page
            if len(page) < 1000:
                break
            from_id = page[-1]["id"] + 1
    assert sorted(api_shape(t) for t in theirs) == got

    filled = filled_orders(tmp_path, "main")
    assert len(filled) > 3000
    assert mismatches(filled, stored_trades(tmp_path, "main")) == []
    by_order: dict[tuple[str, int], Decimal] = {}
    for r in _lake_trades(tmp_path):
        key = (r["symbol"], r["order_id"])
        by_order[key] = by_order.get(key, Decimal(0)) + r["qty"]
    assert all(by_order[(o.symbol, o.order_id)] == o.executed_qty for o in filled)

    meta = result.metadata()
    assert result.fetched.meter.weight == spent  # our metering agrees with the client's budget
    assert spent * 5 <= meta["baseline_windows_weight"]
    assert spent < meta["baseline_per_order_weight"]


def test_ws_api_gives_the_same_trades(sandbox, tmp_path):
    _backfill(sandbox, tmp_path / "ws", "ws")
    _backfill(sandbox, tmp_path / "rest", "rest")
    ws = sorted(lake_shape(r) for r in _lake_trades(tmp_path / "ws"))
    rest = sorted(lake_shape(r) for r in _lake_trades(tmp_path / "rest"))
    assert ws == rest and len(ws) > 5000
    assert {r["source"] for r in _lake_trades(tmp_path / "ws")} == {"ws"}

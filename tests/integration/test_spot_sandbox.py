"""Integration: spot discovery + planner + fetch against the real sandbox exchange through BinanceClient.

Acceptance (issue): 60-day backfill, ~300 listed symbols, 12 active, a delisted pair given by config, a day with
> 2500 orders on one symbol, orders updated across days. The run's weight must be >= 5x below 24 h windows over
the active symbols and >= 50x below windows over every listed symbol, and the rows must equal the truth exactly.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

import pipeline.binance as binance
import pipeline.sandbox.testing as testing
from pipeline.settings import Settings
from pipeline.spot import SymbolIndex, discover_symbols, execute_plan, plan_spot_backfill
from pipeline.times import day_of, day_start_ms, day_window

FIELDS_ORDER = ("symbol", "orderId")


def _truth_orders(truth: dict, start_ms: int, end_ms: int) -> list[dict]:
    rows = []
    for r in truth["spot_orders"]:
        if r.get("archived") or r.get("_archived"):
            continue
        if start_ms <= r["updateTime"] <= end_ms:
            rows.append({k: v for k, v in r.items() if not k.startswith("_") and k != "archived"})
    return sorted(rows, key=lambda r: (r["symbol"], r["orderId"]))


def _rows(result) -> list[dict]:
    return sorted(
        (r for rows in result.orders_by_day.values() for r in rows), key=lambda r: (r["symbol"], r["orderId"])
    )


def _delisted(truth: dict) -> list[str]:
    raw = truth.get("delisted", [])
    return sorted(raw)  # list of symbols or a dict keyed by symbol


@pytest.fixture(scope="module")
def sandbox():
    with testing.start_sandbox(
        listed_symbols=300, active_symbols=12, history_days=60, busy_day_orders=2500, time_scale=60.0
    ) as sx:
        yield sx


def _client(sx, tmp_path):
    env = testing.sandbox_env(sx, tmp_path)
    env.setdefault("ORDERLAKE_BUDGET_DIR", str(tmp_path / "budget"))
    settings = Settings.from_env(env)
    client = binance.BinanceClient.from_settings(settings)
    return client


def test_sandbox_60_day_backfill_equals_truth_and_is_cheap(sandbox, tmp_path, capsys):
    started = time.monotonic()
    client = _client(sandbox, tmp_path)
    try:
        truth = sandbox.truth()
        spent = lambda: client.weight_used().get("spot", 0)  # noqa: E731
        index = SymbolIndex.load(tmp_path, "main")
        lines: list[str] = []
        disc = discover_symbols(client.spot, index, explicit=_delisted(truth), log=lines.append, weight_used=spent)
        assert "full probe" in lines[0]
        now = client.spot.server_time()
        end = day_of(now) - timedelta(days=1)
        start = end - timedelta(days=59)
        plan = plan_spot_backfill(index, start, end, now_ms=now, log=lines.append)
        result = execute_plan(client.spot, plan, index=index, weight_used=spent, log=lines.append)
        got, want = _rows(result), _truth_orders(truth, day_start_ms(start), day_window(end)[1])
        assert len(got) == len(want)
        assert got == want  # every field, exactly as Binance strings
        base = plan.summary()["baselines"]
        run_weight = result.measured_weight if result.measured_weight is not None else result.weight
        ratio_active = base["windows_over_active"]["weight"] / run_weight
        ratio_listed = base["windows_over_listed"]["weight"] / run_weight
        report = (
            f"\nSPOT SANDBOX: discovery weight {disc.cost_weight} (client {disc.measured_weight}); run weight "
            f"{result.weight} (client {result.measured_weight}); baselines {base}; ratios "
            f"{ratio_active:.1f}x / {ratio_listed:.1f}x; {len(got)} orders; "
            f"{time.monotonic() - started:.1f}s"
        )
        with capsys.disabled():
            print(report)
        assert ratio_active >= 5
        assert ratio_listed >= 50
    finally:
        client.close()


def test_sandbox_rest_and_ws_return_identical_rows(sandbox, tmp_path):
    client = _client(sandbox, tmp_path)
    try:
        truth = sandbox.truth()
        index = SymbolIndex.load(tmp_path, "main")
        discover_symbols(client.spot, index, explicit=_delisted(truth), probe="targeted", log=lambda m: None)
        # a few known symbols are enough to compare transports; add the busiest one so paging is exercised
        counts: dict[str, int] = {}
        for r in truth["spot_orders"]:
            counts[r["symbol"]] = counts.get(r["symbol"], 0) + 1
        symbols = sorted(counts, key=counts.get)[-3:]
        now = client.spot.server_time()
        end = day_of(now) - timedelta(days=1)
        start = end - timedelta(days=6)
        results = {}
        for name, api in (("rest", client.spot), ("ws", client.spot_ws)):
            plan = plan_spot_backfill(index, start, end, now_ms=now, mode="daily", symbols=symbols, log=lambda m: None)
            results[name] = execute_plan(api, plan, log=lambda m: None)
        assert _rows(results["rest"]) == _rows(results["ws"])
        assert results["rest"].order_lists_by_day == results["ws"].order_lists_by_day
        assert _rows(results["rest"])  # not vacuous
    finally:
        client.close()

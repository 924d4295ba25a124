"""The USDⓈ-M and PM orders REST tail through Dagster against the sandbox: the lake equals the truth on the days REST
serves whole, the checks pass, and the reconciliation check reports an export row REST contradicts, with the row;
`orderlake daily` asks an export of the one market whose order vanished."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import pytest

from assets.cli import main
from assets.definitions import build_definitions
from pipeline.futures import state
from pipeline.futures.stored import latest_orders
from pipeline.sandbox.testing import start_sandbox
from pipeline.storage.schemas import futures_orders
from pipeline.storage.versions import write_day
from pipeline.times import DAY_MS, day_of, day_start_ms
from tests.support.assets import sandbox_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sandbox():
    with start_sandbox(
        listed_symbols=20, history_days=3, futures_history_days=20, futures_late_finals=False, time_scale=60.0
    ) as sx:
        yield sx


def _store_as_export(data_dir, rows: list[dict], market: str) -> None:
    by_day: dict = defaultdict(list)
    for o in rows:
        by_day[day_of(o["updateTime"])].append(o)
    for day, day_rows in by_day.items():
        table = futures_orders.from_api(
            day_rows, account="main", market=market, source="export", ingested_at=datetime.now(UTC)
        )
        write_day(data_dir, futures_orders.MARKETS[market], "main", day, table)


def _checks(result) -> dict:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in (ev.event_specific_data for ev in result.all_events if ev.event_type_value == "ASSET_CHECK_EVALUATION")
    }


def test_rest_tail_equals_truth_and_reconciles_with_the_export(sandbox, tmp_path, monkeypatch) -> None:
    data = tmp_path / "data"
    settings = sandbox_settings(monkeypatch, sandbox, data)
    end = day_of(sandbox.exchange.clock.market()) - timedelta(days=1)  # its day, however late this test runs
    start = end - timedelta(days=1)
    lo, hi = day_start_ms(start), day_start_ms(end) + DAY_MS
    truth = sandbox.truth()
    exported = [o for o in truth["pm_um_orders"] if lo <= o["time"] < hi]
    tampered = dict(exported[0], executedQty=str(Decimal(exported[0]["executedQty"]) + 1))
    _store_as_export(data, [tampered, *exported[1:]], "pm_um")
    result = (
        build_definitions(settings)
        .resolve_job_def("futures_orders_rest_backfill")
        .execute_in_process(
            instance=dg.DagsterInstance.ephemeral(),
            tags={
                "dagster/asset_partition_range_start": start.isoformat(),
                "dagster/asset_partition_range_end": end.isoformat(),
            },
        )
    )
    assert result.success
    for market in ("usdm", "pm_um"):
        want = {
            (o["symbol"], o["orderId"]): (o["status"], o["updateTime"])
            for o in truth[f"{market}_orders"]
            if lo <= o["time"] < hi
        }
        got = latest_orders(data, "main", futures_orders.MARKETS[market])
        assert {k: (o.status, o.update_ms) for k, o in got.items() if k in want} == want
    checks = _checks(result)
    assert checks[("futures_orders_rest", "unique_symbol_order_id")].passed
    assert checks[("futures_orders_rest", "rest_equals_export")].passed
    pm = checks[("pm_um_orders_rest", "rest_equals_export")]
    assert not pm.passed
    mismatches = pm.metadata["mismatches"].value
    assert [(m["symbol"], m["column"]) for m in mismatches] == [(tampered["symbol"], "executed_qty")]
    assert pm.metadata["orders_compared"].value == len(exported)


def test_daily_asks_an_export_only_of_the_market_that_needs_it(sandbox, tmp_path, monkeypatch) -> None:
    """An open USDⓈ-M order REST no longer knows vanishes at the daily refresh: its export is asked of USDⓈ-M only."""
    data = tmp_path / "data"
    settings = sandbox_settings(
        monkeypatch, sandbox, data, start_date=day_of(sandbox.exchange.clock.market()) - timedelta(days=30)
    )
    now = sandbox.exchange.clock.market()
    ghost = {**sandbox.truth()["usdm_orders"][-1], "orderId": 10**15, "status": "NEW", "executedQty": "0"}
    ghost["time"] = ghost["updateTime"] = now - 5 * DAY_MS
    _store_as_export(data, [ghost], "usdm")
    before = dict(sandbox.stats()["export_ids_created"])
    assert main(["daily", "--quiet", "--select", "futures"], settings) == 0
    assert set(state.load(data, "main", "usdm").get("vanished", {})) == {f"{ghost['symbol']}:{10**15}"}
    created = {m: n - before.get(m, 0) for m, n in sandbox.stats()["export_ids_created"].items()}
    assert {m: n for m, n in created.items() if n} == {"usdm": 1}

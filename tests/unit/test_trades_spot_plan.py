"""Spot trades: the planner prices orderId calls, 24 h windows and fromId cursors; the fetch never stops at a full
page; the run repairs an order the lake learned of after its trades' day was fetched."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from pipeline.storage.schemas import spot_orders
from pipeline.storage.versions import write_day
from pipeline.times import DAY_MS, day_start_ms
from pipeline.trades.spot_backfill import backfill_spot_trades
from pipeline.trades.spot_fetch import SpotTradesFetcher
from pipeline.trades.spot_planner import plan_spot_trades
from pipeline.trades.stored import FilledOrder, StoredTrades
from tests.support.trades import FakeMyTrades, trade

D1 = date(2026, 3, 1)
T1 = day_start_ms(D1)
NOW = T1 + 90 * DAY_MS


def _order(symbol: str, oid: int, t: int, u: int) -> FilledOrder:
    return FilledOrder(symbol, oid, t, u, Decimal("1"), "FILLED")


def _plan(orders: list[FilledOrder], stored: StoredTrades | None = None, end: date = date(2026, 4, 29)):
    return plan_spot_trades(D1, end, filled=orders, stored=stored or StoredTrades(), now_ms=NOW)


def test_cheapest_strategy_per_symbol() -> None:
    few = [_order("AAA", 1, T1, T1 + 10), _order("AAA", 2, T1 + 5 * DAY_MS, T1 + 5 * DAY_MS)]
    one_day = [_order("BBB", i, T1 + i, T1 + i + 1) for i in range(10)]
    busy = [_order("CCC", i, T1 + (i % 60) * DAY_MS, T1 + (i % 60) * DAY_MS + 5) for i in range(600)]
    plan = _plan(few + one_day + busy)
    got = {p.symbol: (p.strategy, p.weight) for p in plan.symbols}
    assert got == {"AAA": ("orders", 10), "BBB": ("windows", 20), "CCC": ("cursor", 40 + 20)}
    assert plan.baselines["per_order"]["weight"] == 612 * 5
    assert plan.baselines["windows_over_active"]["weight"] == 3 * 60 * 20


def test_orders_outside_the_range_are_not_planned_and_a_stored_trade_anchors_the_cursor() -> None:
    before = _order("CCC", 0, T1 - 3 * DAY_MS, T1 - DAY_MS)
    busy = [_order("CCC", i, T1 + (i % 60) * DAY_MS, T1 + (i % 60) * DAY_MS + 5) for i in range(1, 600)]
    stored = StoredTrades(last_before={"CCC": [(T1 - DAY_MS, 777)]})
    (plan,) = _plan([before, *busy], stored).symbols
    assert len(plan.orders) == 599 and plan.strategy == "cursor"
    assert plan.cursor_from == 778 and plan.weight == 40  # no window needed to find where to start


def test_fetch_follows_full_pages_in_every_strategy() -> None:
    many = [trade("AAA", 100 + i, 7, T1 + 1000 + i * 10) for i in range(2500)]
    api = FakeMyTrades([*many, trade("AAA", 5000, 8, T1 + 2 * DAY_MS)])
    fetcher = SpotTradesFetcher(api)
    assert len(fetcher.of_order("AAA", 7)) == 2500
    assert [c.get("from_id") for c in api.calls] == [None, 1100, 2100]
    assert {r["id"] for r in fetcher.window("AAA", T1, T1 + DAY_MS - 1)} == {t["id"] for t in many}
    rows = fetcher.cursor("AAA", 100, T1 + DAY_MS - 1)
    assert {r["id"] for r in rows} >= {t["id"] for t in many}
    assert fetcher.result.meter.weight == 3 * 5 + 3 * 20 + 3 * 20


def _store_orders(tmp, day: date, rows: list[dict]) -> None:
    table = spot_orders.from_api(rows, account="main", source="rest_allOrders", ingested_at=datetime.now(UTC))
    write_day(tmp, "spot_orders", "main", day, table)


def _api_order(oid: int, t: int, u: int, qty: str) -> dict:
    return {"symbol": "AAA", "orderId": oid, "time": t, "updateTime": u, "executedQty": qty, "status": "FILLED"}


def test_an_order_learned_later_is_repaired_by_order_id(tmp_path) -> None:
    d2 = date(2026, 3, 2)
    t2 = day_start_ms(d2)
    late = [trade("AAA", 10, 1, T1 + 500, "2.00000000"), trade("AAA", 30, 1, t2 + 900, "1.00000000")]
    others = [trade("AAA", 20 + i, 100 + i, t2 + 100 + i) for i in range(5)]
    api = FakeMyTrades(late + others)
    # day 1: the lake does not know order 1 yet (its last update is on day 2)
    _store_orders(tmp_path, D1, [])
    first = backfill_spot_trades(api, data_dir=tmp_path, account="main", start=D1, end=D1, now_ms=NOW, log=print)
    assert first.written == {D1: 0} and api.calls == []
    # day 2: order 1 and five others; windows for day 2 miss order 1's day-1 fill, the repair asks for it
    _store_orders(
        tmp_path,
        d2,
        [_api_order(1, T1, t2 + 900, "3")] + [_api_order(100 + i, t2, t2 + 100 + i, "1") for i in range(5)],
    )
    second = backfill_spot_trades(api, data_dir=tmp_path, account="main", start=d2, end=d2, now_ms=NOW, log=print)
    assert second.plan.symbols[0].strategy == "windows"
    assert second.repaired == [("AAA", 1)]
    assert second.written[D1] == 1 and second.written[d2] == 6
    assert second.mismatches == []
    assert second.fetched.meter.calls == {"my_trades": 1, "my_trades_order": 1}


def test_a_second_run_fetches_only_what_the_lake_does_not_hold(tmp_path) -> None:
    """Trades never change: an order whose stored trades add up costs nothing again; one that filled further since
    (a new version with a larger executed quantity) is fetched again, and only it."""
    fills = [trade("AAA", 10 + i, 100 + i, T1 + 100 + i) for i in range(5)]
    api = FakeMyTrades(fills)
    _store_orders(tmp_path, D1, [_api_order(100 + i, T1, T1 + 100 + i, "1") for i in range(5)])
    first = backfill_spot_trades(api, data_dir=tmp_path, account="main", start=D1, end=D1, now_ms=NOW, log=print)
    assert first.written == {D1: 5} and first.fetched.meter.weight > 0
    again = backfill_spot_trades(api, data_dir=tmp_path, account="main", start=D1, end=D1, now_ms=NOW, log=print)
    assert again.plan.symbols == [] and again.fetched.meter.weight == 0 and again.mismatches == []
    assert again.plan.baselines["per_order"]["orders"] == 5  # the baselines still price every filled order
    api.trades.append(trade("AAA", 20, 104, T1 + 200, "1.00000000"))  # order 104 filled once more
    _store_orders(tmp_path, D1, [_api_order(104, T1, T1 + 200, "2")])
    third = backfill_spot_trades(api, data_dir=tmp_path, account="main", start=D1, end=D1, now_ms=NOW, log=print)
    assert [(p.symbol, [o.order_id for o in p.orders]) for p in third.plan.symbols] == [("AAA", [104])]
    assert third.written == {D1: 6} and third.mismatches == []

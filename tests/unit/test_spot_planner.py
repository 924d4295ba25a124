"""Cost-based spot planner and fetch loop against the in-memory FakeSpotApi."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from pipeline.spot import (
    SymbolIndex,
    active_symbols,
    discover_symbols,
    execute_plan,
    fetch_open_orders,
    plan_spot_backfill,
)
from pipeline.spot.fake import FakeSpotApi, make_list, make_order, scenario
from pipeline.times import DAY_MS, day_of, day_start_ms, day_window

NOW = 1_709_294_400_000  # 2024-03-01 12:00 UTC
TODAY = date(2024, 3, 1)
quiet = {"log": lambda m: None}


def rows_of(result) -> list[dict]:
    return sorted(
        (r for rows in result.orders_by_day.values() for r in rows), key=lambda r: (r["symbol"], r["orderId"])
    )


def discovered(fake: FakeSpotApi, tmp_path, **kw) -> SymbolIndex:
    index = SymbolIndex.load(tmp_path, "main")
    discover_symbols(fake, index, **kw, **quiet)
    return index


def run(fake: FakeSpotApi, index: SymbolIndex, start: date, end: date, **kw):
    plan = plan_spot_backfill(index, start, end, now_ms=fake.now, **kw, **quiet)
    w0, n0 = fake.weight, len(fake.calls)
    result = execute_plan(fake, plan, index=index, **quiet)
    assert result.weight == fake.weight - w0  # our metering matches what the server charged
    assert sum(result.calls.values()) == len(fake.calls) - n0
    return plan, result


def test_day_window_is_one_ms_short_of_24h():
    start, end = day_window(date(2024, 2, 29))
    assert end - start == DAY_MS - 1
    assert day_of(start) == day_of(end) == date(2024, 2, 29)
    assert day_window(date(2024, 3, 1))[0] == end + 1  # no gap, no overlap


def test_60_day_backfill_equals_truth_and_beats_baselines(tmp_path):
    fake = scenario()
    index = discovered(fake, tmp_path, explicit=["DELISTUSDT", "GONEBUSD"])
    end = TODAY - timedelta(days=1)
    start = end - timedelta(days=59)
    plan, result = run(fake, index, start, end)
    assert rows_of(result) == fake.truth(day_start_ms(start), day_window(end)[1])
    assert set(result.orders_by_day) == set(plan.days)  # every partition present, even when empty
    for day, rows in result.orders_by_day.items():
        assert all(day_of(r["updateTime"]) == day for r in rows)
    lists = [r for rows in result.order_lists_by_day.values() for r in rows]
    assert len(lists) == 30
    base = plan.summary()["baselines"]
    assert result.weight * 5 <= base["windows_over_active"]["weight"]
    assert result.weight * 50 <= base["windows_over_listed"]["weight"]
    assert base["windows_over_active"]["symbols"] == 13 and base["windows_over_listed"]["symbols"] == 301
    assert any(b.kind == "delisted" and b.symbol == "GONEBUSD" for b in result.blind_spots)
    json.dumps(plan.summary()), json.dumps(result.summary())  # run metadata must serialise


def test_planner_prefers_windows_for_a_short_range_on_a_long_busy_history(tmp_path):
    fake = FakeSpotApi(now=NOW, listed={"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT")})
    # 5000 orders over 400 days on BTCUSDT; 3 orders on ETHUSDT
    fake.add_orders(make_order("BTCUSDT", i, NOW - 400 * DAY_MS + i * 6_912_000) for i in range(1, 5001))
    fake.add_orders(make_order("ETHUSDT", 4 - i, NOW - i * 9 * DAY_MS) for i in range(1, 4))
    index = discovered(fake, tmp_path)
    short = plan_spot_backfill(index, TODAY - timedelta(days=2), TODAY - timedelta(days=1), now_ms=NOW, **quiet)
    strategy = {p.symbol: p.strategy for p in short.symbols}
    # ETHUSDT: last update 9 days ago, nothing open, history known through now -> no call at all
    assert strategy == {"BTCUSDT": "windows", "ETHUSDT": "skip"}
    assert short.est_calls == 2
    long = plan_spot_backfill(index, TODAY - timedelta(days=300), TODAY - timedelta(days=1), now_ms=NOW, **quiet)
    assert {p.symbol: p.strategy for p in long.symbols} == {"BTCUSDT": "cursor", "ETHUSDT": "cursor"}
    # the probe's first page (1000 terminal orders, all updated before the range) is skipped by the cursor
    assert long.symbols[0].cursor_start == 1001
    for plan in (short, long):
        result = execute_plan(fake, plan, **quiet)
        assert rows_of(result) == fake.truth(plan.start_ms, plan.end_ms)


@pytest.mark.parametrize("n", [999, 1000, 1001, 2000, 2500])
def test_windows_page_through_exactly_limit_days_without_truncating(tmp_path, n):
    fake = FakeSpotApi(now=NOW, listed={"BTCUSDT": ("BTC", "USDT")})
    day0 = day_start_ms(TODAY - timedelta(days=1))
    fake.add_orders(make_order("BTCUSDT", i, day0 + i * 40, day0 + i * 40 + (i % 3)) for i in range(1, n + 1))
    index = SymbolIndex.load(tmp_path, "main")
    plan = plan_spot_backfill(
        index,
        TODAY - timedelta(days=1),
        TODAY - timedelta(days=1),
        now_ms=NOW,
        symbols=["BTCUSDT"],
        mode="daily",
        **quiet,
    )
    result = execute_plan(fake, plan, **quiet)
    assert rows_of(result) == fake.truth(plan.start_ms, plan.end_ms)
    assert len(rows_of(result)) == n
    pages = fake.call_count("all_orders")
    assert pages == n // 1000 + 1  # a page of exactly 1000 always triggers one more call
    assert not result.fallbacks


def test_page_sharing_one_update_time_falls_back_to_cursor(tmp_path):
    fake = FakeSpotApi(now=NOW, listed={"BTCUSDT": ("BTC", "USDT")})
    t = day_start_ms(TODAY - timedelta(days=1)) + 3_600_000
    fake.add_orders(make_order("BTCUSDT", i, t - 1000, t) for i in range(1, 1201))  # 1200 rows, one updateTime
    fake.add_orders([make_order("BTCUSDT", 5000, t - 2 * DAY_MS)])  # older day, outside the fallback day
    plan = plan_spot_backfill(
        SymbolIndex.load(tmp_path, "main"),
        TODAY - timedelta(days=2),
        TODAY - timedelta(days=1),
        now_ms=NOW,
        symbols=["BTCUSDT"],
        mode="daily",
        **quiet,
    )
    result = execute_plan(fake, plan, **quiet)
    assert rows_of(result) == fake.truth(plan.start_ms, plan.end_ms)
    assert len(result.fallbacks) == 1 and "share updateTime" in result.fallbacks[0]
    assert result.strategies["BTCUSDT"] == "windows+cursor"


def test_window_pages_not_sorted_by_update_time_fall_back_to_cursor(tmp_path):
    fake = FakeSpotApi(now=NOW, listed={"BTCUSDT": ("BTC", "USDT")}, window_order="orderId")
    day0 = day_start_ms(TODAY - timedelta(days=1))
    # ids ascending but update times descending inside the day: time paging would skip rows
    fake.add_orders(make_order("BTCUSDT", i, day0 + 10, day0 + 80_000_000 - i * 1000) for i in range(1, 1501))
    plan = plan_spot_backfill(
        SymbolIndex.load(tmp_path, "main"),
        TODAY - timedelta(days=1),
        TODAY - timedelta(days=1),
        now_ms=NOW,
        symbols=["BTCUSDT"],
        mode="daily",
        **quiet,
    )
    result = execute_plan(fake, plan, **quiet)
    assert len(rows_of(result)) == 1500 and result.fallbacks


def test_cursor_filters_to_range_and_splits_by_update_day(tmp_path):
    fake = FakeSpotApi(now=NOW, listed={"BTCUSDT": ("BTC", "USDT")})
    d = day_start_ms(TODAY - timedelta(days=10))
    fake.add_orders(
        [
            make_order("BTCUSDT", 1, d - 5 * DAY_MS, d - 5 * DAY_MS),  # before range
            make_order("BTCUSDT", 2, d - 3 * DAY_MS, d + 2 * DAY_MS + 7, status="CANCELED", executed="0.00000000"),
            make_order("BTCUSDT", 3, d + 1000, d + 1000),
            make_order("BTCUSDT", 4, d + DAY_MS - 1, d + DAY_MS),  # placed day 0, last update day 1
            make_order("BTCUSDT", 5, d + 4 * DAY_MS, d + 4 * DAY_MS),  # after range
        ]
    )
    index = discovered(fake, tmp_path)
    plan = plan_spot_backfill(index, day_of(d), day_of(d) + timedelta(days=2), now_ms=NOW, **quiet)
    assert [p.strategy for p in plan.symbols] == ["cursor"]
    result = execute_plan(fake, plan, **quiet)
    by_day = {day: [r["orderId"] for r in rows] for day, rows in result.orders_by_day.items()}
    assert by_day == {day_of(d): [3], day_of(d) + timedelta(days=1): [4], day_of(d) + timedelta(days=2): [2]}


def test_on_day_is_called_in_order_with_complete_days(tmp_path):
    fake = scenario(listed=30, active=4, busy_day_orders=1500)
    index = discovered(fake, tmp_path)
    end = TODAY - timedelta(days=1)
    start = end - timedelta(days=9)
    seen: list[tuple[date, int]] = []
    plan = plan_spot_backfill(index, start, end, now_ms=NOW, **quiet)
    result = execute_plan(fake, plan, on_day=lambda day, o, lst: seen.append((day, len(o))), **quiet)
    assert [d for d, _ in seen] == plan.days
    assert [n for _, n in seen] == [len(result.orders_by_day[d]) for d in plan.days]


def test_index_learns_and_next_range_starts_at_settled_checkpoint(tmp_path):
    fake = FakeSpotApi(now=NOW, listed={"BTCUSDT": ("BTC", "USDT")})
    fake.add_orders(make_order("BTCUSDT", i, NOW - 200 * DAY_MS + i * 3_000_000) for i in range(1, 4001))
    index = SymbolIndex.load(tmp_path, "main")
    index.get("BTCUSDT").add_evidence("explicit")  # known symbol, never probed
    first = plan_spot_backfill(index, TODAY - timedelta(days=200), TODAY - timedelta(days=150), now_ms=NOW, **quiet)
    assert first.symbols[0].strategy == "windows"  # count unknown: cursor cannot be priced
    execute_plan(fake, first, index=index, **quiet)
    # windows gave only bounds; a complete cursor scan (full backfill) teaches count and the settled checkpoint
    full = plan_spot_backfill(
        index, TODAY - timedelta(days=200), TODAY, now_ms=NOW, mode="backfill", symbols=["BTCUSDT"], **quiet
    )
    full.symbols[0].strategy = "cursor"
    execute_plan(fake, full, index=index, **quiet)
    btc = SymbolIndex.load(tmp_path, "main").symbols["BTCUSDT"]
    assert (btc.order_count, btc.count_exact, btc.has_open) == (4000, True, False)
    assert btc.settled_below_id == 4001
    later = plan_spot_backfill(index, TODAY - timedelta(days=30), TODAY, now_ms=NOW + 1, **quiet)
    sp = later.symbols[0]
    assert (sp.cursor_start, sp.cursor_calls) == (4001, 1)  # skips the 4000 settled orders
    assert sp.windows_calls == 1  # only today can hold updates: last update was 61 days ago, nothing open
    sp.strategy = "cursor"
    fake.add_orders([make_order("BTCUSDT", 4001, NOW - 1000)])
    result = execute_plan(fake, later, index=index, **quiet)
    assert [r["orderId"] for r in rows_of(result)] == [4001]
    assert [p for k, p in fake.calls if k == "all_orders"][-1]["order_id"] == 4001
    assert index.symbols["BTCUSDT"].order_count == 4001 and index.symbols["BTCUSDT"].settled_below_id == 4002


def test_daily_mode_windows_over_active_symbols_only(tmp_path):
    fake = scenario(listed=40, active=5)
    index = discovered(fake, tmp_path, explicit=["DELISTUSDT"])
    yesterday = TODAY - timedelta(days=1)
    n0 = fake.call_count("all_orders")
    active = active_symbols(index, yesterday)
    plan = plan_spot_backfill(index, yesterday, yesterday, mode="daily", now_ms=NOW, **quiet)
    assert {p.symbol for p in plan.symbols} == set(active)
    assert all(p.strategy == "windows" and p.days == [yesterday] for p in plan.symbols)
    assert "DELISTUSDT" in active  # explicit evidence
    assert len(active) < 40
    result = execute_plan(fake, plan, **quiet)
    assert fake.call_count("all_orders") - n0 >= len(active)
    truth = [r for r in fake.truth(plan.start_ms, plan.end_ms) if r["symbol"] in set(active)]
    assert rows_of(result) == truth
    assert any(b.kind == "daily_scope" for b in plan.blind_spots)


def test_order_lists_cursor_vs_windows(tmp_path):
    fake = FakeSpotApi(now=NOW, listed={"BTCUSDT": ("BTC", "USDT")})
    fake.order_lists = [make_list(i, NOW - 40 * DAY_MS + i * 3_600_000) for i in range(1, 200)]
    index = discovered(fake, tmp_path)
    plan = plan_spot_backfill(index, TODAY - timedelta(days=40), TODAY - timedelta(days=1), now_ms=NOW, **quiet)
    assert plan.order_lists.strategy == "cursor" and plan.order_lists.calls == 1
    result = execute_plan(fake, plan, **quiet)
    got = sorted(r["orderListId"] for rows in result.order_lists_by_day.values() for r in rows)
    want = [r["orderListId"] for r in fake.order_lists if plan.start_ms <= r["transactionTime"] <= plan.end_ms]
    assert got == want
    assert not any(
        p.get("from_id") is not None and p.get("start_time") is not None
        for k, p in fake.calls
        if k == "all_order_lists"
    )  # never -1128
    daily = plan_spot_backfill(
        index, TODAY - timedelta(days=39), TODAY - timedelta(days=38), mode="daily", now_ms=NOW, **quiet
    )
    assert daily.order_lists.strategy == "windows"
    res2 = execute_plan(fake, daily, **quiet)
    assert sum(len(v) for v in res2.order_lists_by_day.values()) == 48


def test_open_orders_choose_cheaper_call(tmp_path):
    fake = scenario(listed=40, active=5)
    index = discovered(fake, tmp_path)
    few = fetch_open_orders(fake, index, **quiet)
    assert few.calls == 5 + 1 and few.weight == 5 * 6 + 6  # per symbol: 30 < 80
    truth = [r for rows in fake.orders.values() for r in rows if r["status"] == "NEW"]
    assert sorted(r["orderId"] for r in few.orders) == sorted(r["orderId"] for r in truth)
    many = fetch_open_orders(fake, index, symbols=[f"S{i}" for i in range(14)], **quiet)
    assert many.calls == 2 and many.weight == 80 + 6
    assert len(many.orders) == len(truth)


def test_never_asks_more_than_24h(tmp_path):
    fake = scenario(listed=20, active=3)
    index = discovered(fake, tmp_path)
    for mode in ("daily", "backfill"):
        execute_plan(
            fake, plan_spot_backfill(index, TODAY - timedelta(days=30), TODAY, mode=mode, now_ms=NOW, **quiet), **quiet
        )
    spans = [
        p["end_time"] - p["start_time"] for k, p in fake.calls if k == "all_orders" and p.get("start_time") is not None
    ]
    assert spans and max(spans) == DAY_MS - 1


def test_archived_orders_are_a_recorded_blind_spot(tmp_path):
    fake = scenario(listed=20, active=3)
    index = discovered(fake, tmp_path, explicit=["DELISTUSDT"])
    plan, result = run(fake, index, TODAY - timedelta(days=120), TODAY - timedelta(days=1))
    assert rows_of(result) == fake.truth(plan.start_ms, plan.end_ms)  # zero-fill cancels > 90 days are gone
    archived = [b for b in result.blind_spots if b.kind == "archived"]
    assert len(archived) == 1 and archived[0].end == (day_of(NOW - 90 * DAY_MS) - timedelta(days=1)).isoformat()
    recent = plan_spot_backfill(index, TODAY - timedelta(days=30), TODAY, now_ms=NOW, **quiet)
    assert not any(b.kind == "archived" for b in recent.blind_spots)

"""backfill_spot (discover -> plan -> fetch -> write) on the in-memory fake: crash safety, re-runs, versions."""

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.spot.backfill import backfill_spot
from pipeline.spot.fake import FakeSpotApi, make_order, scenario
from pipeline.storage import lake
from pipeline.storage.schemas import spot_orders
from pipeline.storage.versions import merge_day, write_day
from pipeline.times import DAY_MS, day_of, day_start_ms, day_window
from pipeline.warehouse.catalog import build_catalog

T0 = 1_709_294_400_000  # the fake's "now": 2024-03-01 12:00 UTC
ORDER_STAMPS = ("ingested_at", "source")


def _rows(data: Path, table: str = "spot_orders") -> list[dict]:
    out = []
    for day in lake.list_partitions(data, table, "main"):
        out += lake.read_partition(data, table, "main", day).to_pylist()
    return sorted(out, key=lambda r: (r.get("symbol"), r.get("order_id", r.get("order_list_id")), r.get("update_time")))


def _strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ORDER_STAMPS} for r in rows]


def _truth(fake: FakeSpotApi, start: date, end: date) -> list[dict]:
    rows = fake.truth(day_start_ms(start), day_window(end)[1])
    table = spot_orders.from_api(rows, account="main", source="x", ingested_at=0)
    return sorted(_strip(table.to_pylist()), key=lambda r: (r["symbol"], r["order_id"], r["update_time"]))


class CrashAfter:
    """A spot API that dies (like a killed process or a lost network) after ``n`` allOrders calls."""

    def __init__(self, api: FakeSpotApi, n: int) -> None:
        self.api, self.left = api, n

    def __getattr__(self, name: str):
        return getattr(self.api, name)

    def all_orders(self, symbol: str, **kw):
        self.left -= 1
        if self.left < 0:
            raise ConnectionError("simulated crash in the middle of the backfill")
        return self.api.all_orders(symbol, **kw)


def _window(fake: FakeSpotApi, days: int) -> tuple[date, date]:
    end = day_of(fake.now) - timedelta(days=1)
    return end - timedelta(days=days - 1), end


def test_crash_keeps_finished_days_and_a_rerun_completes(tmp_path: Path) -> None:
    """Daily mode writes day by day; a crash leaves exactly the finished days, equal to an uninterrupted run's."""
    fake = scenario(listed=30, active=4, days=20, busy_day_orders=1500)
    start, end = _window(fake, 20)
    kwargs = {"account": "main", "start": start, "end": end, "mode": "daily", "log": lambda m: None}
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    backfill_spot(fake, data_dir=reference, **kwargs)
    with pytest.raises(ConnectionError):
        backfill_spot(CrashAfter(fake, 35), data_dir=crashed, **kwargs)
    written = lake.list_partitions(crashed, "spot_orders", "main")
    assert written and written[-1] < end  # crashed part-way
    assert written == [start + timedelta(days=i) for i in range(len(written))]  # finished days, in order
    ref_rows = [r for r in _strip(_rows(reference)) if r["update_time"].date() <= written[-1]]
    assert _strip(_rows(crashed)) == ref_rows and ref_rows  # each finished day is complete
    assert not list(crashed.rglob("*.tmp"))  # no partial file left behind

    backfill_spot(fake, data_dir=crashed, **kwargs)
    assert lake.list_partitions(crashed, "spot_orders", "main") == [start + timedelta(days=i) for i in range(20)]
    assert _strip(_rows(crashed)) == _strip(_rows(reference))


def test_backfill_mode_equals_the_truth(tmp_path: Path) -> None:
    fake = scenario(listed=30, active=4, days=20, busy_day_orders=1500)
    start, end = _window(fake, 20)
    backfill_spot(
        fake, data_dir=tmp_path, account="main", start=start, end=end, explicit=["DELISTUSDT"], log=lambda m: None
    )
    assert _strip(_rows(tmp_path)) == _truth(fake, start, end)


def test_a_second_run_changes_no_row(tmp_path: Path) -> None:
    fake = scenario(listed=30, active=4, days=10, busy_day_orders=1200)
    start, end = _window(fake, 10)
    kwargs = {"data_dir": tmp_path, "account": "main", "start": start, "end": end, "log": lambda m: None}
    backfill_spot(fake, **kwargs)
    first, lists = _rows(tmp_path), _rows(tmp_path, "spot_order_lists")
    assert first and lists
    backfill_spot(fake, **kwargs)
    assert _rows(tmp_path) == first  # ingested_at included: unchanged rows keep theirs
    assert _rows(tmp_path, "spot_order_lists") == lists


def test_an_order_updated_later_keeps_both_versions(tmp_path: Path) -> None:
    day = date(2024, 2, 20)
    placed = day_start_ms(day) + 3_600_000
    fake = FakeSpotApi(now=T0, listed={"BTCUSDT": ("BTC", "USDT")}, balances={"BTC": "1.00000000"})
    fake.add_orders([make_order("BTCUSDT", 7, placed, placed, status="NEW", executed="0.00000000")])
    kwargs = {
        "data_dir": tmp_path,
        "account": "main",
        "start": day,
        "end": day + timedelta(days=3),
        "mode": "daily",
        "log": lambda m: None,
    }
    backfill_spot(fake, **kwargs)
    # three days later the order fills; Binance now returns it only for the day of its last update
    fake.orders["BTCUSDT"] = [make_order("BTCUSDT", 7, placed, placed + 3 * DAY_MS, status="FILLED")]
    backfill_spot(fake, **kwargs)
    versions = [(r["status"], r["update_time"].date()) for r in _rows(tmp_path)]
    assert versions == [("NEW", day), ("FILLED", day + timedelta(days=3))]
    import duckdb

    con = duckdb.connect(str(build_catalog(tmp_path).path), read_only=True)
    assert con.execute("SELECT status FROM spot_orders").fetchall() == [("FILLED",)]
    assert con.execute("SELECT count(*) FROM spot_order_versions").fetchone()[0] == 2
    con.close()


def test_archived_zero_fill_cancel_is_not_lost_by_a_late_refetch(tmp_path: Path) -> None:
    day = date(2023, 10, 1)
    t = day_start_ms(day) + 1000
    row = make_order("BTCUSDT", 1, t, t + 5, status="CANCELED", executed="0.00000000")
    old = spot_orders.from_api([row], account="main", source="rest_allOrders", ingested_at=t + 10)
    write_day(tmp_path, "spot_orders", "main", day, old)
    refetched = spot_orders.from_api([], account="main", source="rest_allOrders", ingested_at=T0)  # Binance: gone
    assert write_day(tmp_path, "spot_orders", "main", day, refetched).num_rows == 1


def test_merge_keeps_the_newest_version_and_unchanged_rows_as_they_were() -> None:
    t = day_start_ms(date(2024, 1, 5))
    old = spot_orders.from_api(
        [make_order("ETHBTC", 1, t, t + 10, status="NEW", executed="0.00000000"), make_order("ETHBTC", 2, t, t + 20)],
        account="main",
        source="s",
        ingested_at=t,
    )
    new = spot_orders.from_api(
        [make_order("ETHBTC", 1, t, t + 99, status="FILLED"), make_order("ETHBTC", 2, t, t + 20)],
        account="main",
        source="s",
        ingested_at=t + DAY_MS,
    )
    merged = {r["order_id"]: r for r in merge_day(old, new, "spot_orders").to_pylist()}
    assert merged[1]["status"] == "FILLED" and merged[1]["executed_qty"] == Decimal("1")
    assert merged[2]["ingested_at"] == old.to_pylist()[1]["ingested_at"]  # unchanged: first sighting kept

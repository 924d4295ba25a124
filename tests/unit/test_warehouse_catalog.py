"""The DuckDB catalog: views over hand-made lake partitions."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from pipeline.warehouse.catalog import CATALOG_FILE, TABLES, build_catalog
from pipeline.warehouse.snapshots import gc_snapshots
from tests.support.warehouse import futures_row, make_table, spot_row, write, write_raw

ALL_VIEWS = {
    "symbols",
    "futures_order_versions",
    "pm_um_order_versions",
    "spot_orders",
    "spot_order_versions",
    "spot_order_lists",
    "spot_open_orders",
    "futures_orders",
    "pm_um_orders",
    "spot_trades",
    "orders",
    "daily_activity",
    "lake_files",
    "coverage",
}
D1, D2, D3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)


def query(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    # order 1: NEW on day 1, FILLED on day 2 (two versions); order 2: partial fill, canceled
    write(
        data,
        "spot_orders",
        "main",
        D1,
        [
            spot_row(1, status="NEW", executed="0", quote="0"),
            spot_row(
                2,
                symbol="ETHUSDT",
                status="CANCELED",
                price="2000.5",
                qty="2",
                executed="0.5",
                quote="1000.25",
                side="SELL",
            ),
        ],
    )
    write(data, "spot_orders", "main", D2, [spot_row(1, update="2024-01-02T08:00:00")])
    write(
        data,
        "futures_orders",
        "main",
        D2,
        [
            futures_row(10, update="2024-01-02T00:00:00"),
            futures_row(11, status="CANCELED", executed="0", update="2024-01-02T00:00:01"),
        ],
    )
    # PM: the same order twice (overlapping exports, different ingestion): it must appear once
    write(
        data,
        "pm_um_orders",
        "main",
        D3,
        [
            futures_row(20, market="pm_um", update="2024-01-03T00:00:00", ingested="2024-03-01T00:00:00"),
            futures_row(20, market="pm_um", update="2024-01-03T00:00:00", ingested="2024-03-02T00:00:00"),
        ],
    )
    return data


def test_build_creates_every_view_with_counts(lake: Path) -> None:
    result = build_catalog(lake)
    assert result.path == lake.resolve() / CATALOG_FILE
    assert set(result.views) == ALL_VIEWS
    assert result.views["spot_order_versions"] == 3
    assert result.views["spot_orders"] == 2
    assert result.views["futures_orders"] == 2
    assert result.views["pm_um_orders"] == 1
    assert result.views["orders"] == 5
    assert result.files["spot_orders"] == 2
    # atomic build: nothing but the catalog is left behind, no WAL
    leftovers = [p.name for p in lake.iterdir() if "duckdb" in p.name]
    assert leftovers == [CATALOG_FILE]
    comments = dict(query(result.path, "SELECT view_name, comment FROM duckdb_views() WHERE NOT internal"))
    assert set(comments) == ALL_VIEWS and all(comments.values())


def test_latest_version_semantics(lake: Path) -> None:
    path = build_catalog(lake).path
    rows = query(path, "SELECT order_id, status, executed_qty, date FROM spot_orders ORDER BY order_id")
    assert rows == [(1, "FILLED", Decimal("1"), D2), (2, "CANCELED", Decimal("0.5"), D1)]
    # same update_time: the later ingestion wins
    write(
        lake,
        "spot_orders",
        "main",
        D2,
        [
            spot_row(1, update="2024-01-02T08:00:00", client_order_id="newer", ingested="2024-04-01T00:00:00"),
            spot_row(1, update="2024-01-02T08:00:00", client_order_id="older", ingested="2024-03-01T00:00:00"),
        ],
    )
    path = build_catalog(lake).path
    assert query(path, "SELECT client_order_id FROM spot_orders WHERE order_id = 1") == [("newer",)]
    assert query(path, "SELECT count(*) FROM spot_order_versions WHERE order_id = 1") == [(3,)]


def test_orders_view_and_exact_decimals(lake: Path) -> None:
    path = build_catalog(lake).path
    cols = [r[0] for r in query(path, "DESCRIBE orders")]
    assert cols == [
        "account",
        "market",
        "symbol",
        "base_asset",
        "quote_asset",
        "order_id",
        "client_order_id",
        "side",
        "type",
        "status",
        "price",
        "orig_qty",
        "executed_qty",
        "quote_qty",
        "avg_price",
        "time",
        "update_time",
        "date",
    ]
    rows = dict(query(path, "SELECT market || ':' || order_id, avg_price FROM orders"))
    assert rows == {
        "spot:1": Decimal("100"),
        "spot:2": Decimal("2000.5"),
        "usdm:10": Decimal("100"),
        "usdm:11": None,
        "pm_um:20": Decimal("100"),
    }
    types = dict(
        query(path, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'orders'")
    )
    assert types["price"].startswith("DECIMAL") and types["avg_price"].startswith("DECIMAL")


def test_exact_sum_of_products(tmp_path: Path) -> None:
    data = tmp_path / "d"
    # realistic magnitudes: float64 would not give these digits exactly
    rows = [spot_row(i, price="26246.51839132", qty="9.49302035", quote="249158.73320545") for i in range(1, 8)]
    rows.append(spot_row(99, price="0.00000001", qty="12345678901.12345678", quote="123.45678901"))
    write(data, "spot_orders", "main", D1, rows)
    path = build_catalog(data).path
    total, typ = query(path, "SELECT sum(price * executed_qty), typeof(sum(price * executed_qty)) FROM spot_orders")[0]
    expected = 7 * Decimal("26246.51839132") * Decimal("9.49302035") + Decimal("0.00000001") * Decimal(
        "12345678901.12345678"
    )
    assert total == expected and typ.startswith("DECIMAL")
    (notional,) = query(path, "SELECT sum(filled_notional) FROM daily_activity")[0]
    assert notional == 7 * Decimal("249158.73320545") + Decimal("123.45678901")
    # spot avg price is computed in integer arithmetic: 1/3 to 8 decimals, not a float
    write(data, "spot_orders", "main", D2, [spot_row(5, qty="3", executed="3", quote="1", time="2024-01-02T00:00:00")])
    path = build_catalog(data).path
    assert query(path, "SELECT avg_price FROM orders WHERE order_id = 5") == [(Decimal("0.33333333"),)]


def test_schema_evolution_new_column_appears(tmp_path: Path) -> None:
    data = tmp_path / "d"
    write(data, "spot_orders", "main", D1, [spot_row(1)])
    newer = make_table("spot_orders", [spot_row(2, time="2024-01-02T00:00:00")], extra={"brand_new": pa.string()})
    newer = newer.set_column(newer.schema.get_field_index("brand_new"), "brand_new", pa.array(["x"]))
    write_raw(data, "spot_orders", "main", D2, newer)
    path = build_catalog(data).path
    assert query(path, "SELECT order_id, brand_new FROM spot_order_versions ORDER BY order_id") == [(1, None), (2, "x")]
    # default: the views read a snapshot taken at build time; a partition written later shows after a rebuild
    write(data, "spot_orders", "main", D3, [spot_row(3, time="2024-01-03T00:00:00")])
    assert query(path, "SELECT count(*) FROM spot_orders") == [(2,)]
    assert query(build_catalog(data).path, "SELECT count(*) FROM spot_orders") == [(3,)]
    # live mode reads the lake itself: a newer partition is visible without a rebuild
    path = build_catalog(data, snapshot=False).path
    write(data, "spot_orders", "main", date(2024, 1, 4), [spot_row(4, time="2024-01-04T00:00:00")])
    assert query(path, "SELECT count(*) FROM spot_orders") == [(4,)]


def test_empty_lake_still_gets_typed_views(tmp_path: Path) -> None:
    result = build_catalog(tmp_path / "empty")
    assert set(result.views) == ALL_VIEWS and not any(result.views.values())
    types = dict(
        query(
            result.path,
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'spot_orders'",
        )
    )
    assert types["price"].startswith("DECIMAL") and types["order_id"] == "BIGINT" and types["date"] == "DATE"
    assert query(result.path, "SELECT count(*) FROM daily_activity") == [(0,)]


def test_empty_partition_table_counts_zero(tmp_path: Path) -> None:
    data = tmp_path / "d"
    write(data, "futures_orders", "main", D1, [])
    result = build_catalog(data)
    assert result.views["futures_orders"] == 0
    assert query(result.path, "SELECT table_name, rows FROM lake_files") == [("futures_orders", 0)]


def test_open_orders_latest_snapshot(tmp_path: Path) -> None:
    data = tmp_path / "d"
    snap1 = [spot_row(i, status="NEW", executed="0", snapshot_time=1704100000000) for i in (1, 2)]
    write(data, "spot_open_orders", "main", D1, snap1)
    write(data, "spot_open_orders", "main", D2, [spot_row(2, status="NEW", executed="0", snapshot_time=1704190000000)])
    path = build_catalog(data).path
    assert query(path, "SELECT order_id FROM spot_open_orders") == [(2,)]
    # an EMPTY latest snapshot means no open orders (not "fall back to the previous snapshot")
    write(data, "spot_open_orders", "main", D3, [])
    path = build_catalog(data).path
    assert query(path, "SELECT count(*) FROM spot_open_orders") == [(0,)]


def test_catalog_works_from_another_cwd(lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(lake)
    path = build_catalog(Path(".")).path  # relative data dir: the views must still hold absolute paths
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import duckdb,sys; c=duckdb.connect(sys.argv[1], read_only=True); "
        "print(c.execute('SELECT count(*) FROM orders').fetchall()[0][0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], cwd=elsewhere, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "5"


def test_rebuild_swaps_file_and_old_reader_keeps_working(lake: Path) -> None:
    path = build_catalog(lake).path
    old = duckdb.connect(str(path), read_only=True)
    try:
        inode = path.stat().st_ino
        write(lake, "futures_orders", "main", D3, [futures_row(12, time="2024-01-03T00:00:00")])
        build_catalog(lake)
        assert path.stat().st_ino != inode  # replaced, not rewritten in place
        assert old.execute("SELECT count(*) FROM spot_orders").fetchall() == [(2,)]
    finally:
        old.close()
    assert query(path, "SELECT count(*) FROM futures_orders") == [(3,)]


def test_daily_activity_definitions(lake: Path) -> None:
    path = build_catalog(lake).path
    rows = query(
        path,
        "SELECT day, market, symbol, orders, filled_orders, fully_filled_orders, filled_notional, "
        "buy_notional, sell_notional FROM daily_activity ORDER BY market, symbol",
    )
    assert rows == [
        (D1, "pm_um", "BTCUSDT", 1, 1, 1, Decimal("100"), Decimal("0"), Decimal("100")),
        (D1, "spot", "BTCUSDT", 1, 1, 1, Decimal("100"), Decimal("100"), Decimal("0")),
        # canceled after a partial fill: counted as filled (executed_qty > 0), not fully filled
        (D1, "spot", "ETHUSDT", 1, 1, 0, Decimal("1000.25"), Decimal("0"), Decimal("1000.25")),
        (D1, "usdm", "BTCUSDT", 2, 1, 1, Decimal("100"), Decimal("0"), Decimal("100")),
    ]


def test_tables_constant_matches_contract() -> None:
    assert TABLES == (
        "spot_orders",
        "spot_order_lists",
        "spot_open_orders",
        "futures_orders",
        "pm_um_orders",
        "spot_trades",
    )


def test_snapshots_pin_files_and_are_collected(lake: Path) -> None:
    first = build_catalog(lake)
    assert first.snapshot is not None and first.snapshot.is_dir()
    (path,) = query(first.path, "SELECT path FROM lake_files WHERE table_name = 'futures_orders'")[0]
    assert path.startswith(str(lake.resolve() / "lake"))  # shown under the lake, not the snapshot
    second = build_catalog(lake)
    crashed = lake / "snapshots" / "0000000000001-deadbeef"  # an incomplete snapshot of a crashed build
    crashed.mkdir()
    now = int(time.time() * 1000)
    assert gc_snapshots(lake, grace_seconds=3600, now_ms=now) == [crashed]  # the old catalog may still be read
    removed = gc_snapshots(lake, grace_seconds=3600, now_ms=now + 2 * 3600 * 1000)
    assert removed == [first.snapshot]
    assert second.snapshot.is_dir()
    assert query(second.path, "SELECT count(*) FROM orders") == [(5,)]

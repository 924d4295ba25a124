"""Closed months compacted into one file each, and union_by_name only where the files' schemas differ.

The reference for "same result" is a live catalog (snapshot=False): it reads every day file of the lake itself with
union_by_name, exactly as the catalog did before compaction existed.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.warehouse.catalog import build_catalog, list_views
from pipeline.warehouse.compaction import COMPACT_DIR, gc_compacted
from pipeline.warehouse.snapshots import gc_snapshots
from tests.support.warehouse import futures_row, make_table, ms, order_list_row, spot_row, write, write_raw

NOW = datetime(2024, 3, 15, 12, tzinfo=UTC)  # January and February 2024 are closed, March is open
JAN1, JAN2, JAN31, FEB10, MAR1 = (
    date(2024, 1, 1),
    date(2024, 1, 2),
    date(2024, 1, 31),
    date(2024, 2, 10),
    date(2024, 3, 1),
)
AWKWARD = "26246.51839132"  # 13 significant digits: a float would not keep them


def at(day: date, hour: int = 10) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00"


def query(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def view_sql(path: Path, view: str) -> str:
    return query(path, f"SELECT sql FROM duckdb_views() WHERE view_name = '{view}'")[0][0]


_FLAG = r"(true|false|CAST\('[tf]' AS BOOLEAN\))"  # DuckDB 2.0 prints true; 1.5 prints CAST('t' AS BOOLEAN)


def reads(sql: str) -> list[tuple[str, str]]:
    """(hive_partitioning, union_by_name) of every read_parquet in a view's SQL: hive false = compacted months."""
    found = re.findall(rf"\(hive_partitioning = {_FLAG}\), \(union_by_name = {_FLAG}\)", sql)
    return [tuple("true" if v in ("true", "CAST('t' AS BOOLEAN)") else "false" for v in pair) for pair in found]


def everything(path: Path) -> dict[str, tuple[list[tuple], list[tuple]]]:
    """Every view's (columns with types, all rows sorted)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            v: (con.execute(f"DESCRIBE {v}").fetchall(), con.execute(f"SELECT * FROM {v} ORDER BY ALL").fetchall())
            for v in list_views(con)
        }
    finally:
        con.close()


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """Two accounts, every table, closed months (with an empty day) and an open one."""
    data = tmp_path / "data"
    for acc in ("main", "sub"):
        write(
            data,
            "spot_orders",
            acc,
            JAN1,
            [
                spot_row(1, account=acc, status="NEW", executed="0", quote="0", time=at(JAN1)),
                spot_row(
                    2,
                    account=acc,
                    symbol="ETHUSDT",
                    price=AWKWARD,
                    qty="9.49302035",
                    quote="249158.73320545",
                    time=at(JAN1, 11),
                ),
                spot_row(
                    3,
                    account=acc,
                    price="0.00000001",
                    qty="12345678901.12345678",
                    quote="123.45678901",
                    time=at(JAN1, 12),
                ),
            ],
        )
        write(data, "spot_orders", acc, JAN2, [spot_row(1, account=acc, time=at(JAN1), update=at(JAN2))])
        write(data, "spot_orders", acc, JAN31, [])
        write(data, "spot_orders", acc, FEB10, [spot_row(4, account=acc, side="SELL", time=at(FEB10))])
        write(data, "spot_orders", acc, MAR1, [spot_row(5, account=acc, time=at(MAR1))])
    write(
        data,
        "futures_orders",
        "main",
        JAN2,
        [
            futures_row(10, price=AWKWARD, time=at(JAN2)),
            futures_row(11, status="CANCELED", executed="0", time=at(JAN2, 11)),
        ],
    )
    write(data, "futures_orders", "main", MAR1, [futures_row(12, time=at(MAR1))])
    write(data, "pm_um_orders", "main", FEB10, [futures_row(20, market="pm_um", time=at(FEB10))])
    write(data, "spot_order_lists", "main", JAN1, [order_list_row(7, time=at(JAN1))])
    write(
        data,
        "spot_open_orders",
        "main",
        JAN2,
        [spot_row(1, status="NEW", executed="0", time=at(JAN1), snapshot_time=ms(at(JAN2, 0)))],
    )
    write(
        data,
        "spot_open_orders",
        "main",
        FEB10,
        [spot_row(4, status="NEW", executed="0", time=at(FEB10, 1), snapshot_time=ms(at(FEB10, 2)))],
    )
    return data


def compacted_files(data: Path) -> set[Path]:
    return set((data / COMPACT_DIR).glob("*/*/*/*.parquet"))


def test_compacted_months_give_exactly_the_rows_of_the_day_files(lake: Path) -> None:
    built = build_catalog(lake, now=NOW)
    # spot: Jan + Feb of two accounts; futures Jan; pm Feb; lists Jan; open orders Jan + Feb
    assert {t: len(f) for t, f in built.compacted.items()} == {
        "spot_orders": 4,
        "futures_orders": 1,
        "pm_um_orders": 1,
        "spot_order_lists": 1,
        "spot_open_orders": 2,
    }
    assert built.months_compacted == 9 and compacted_files(lake) == {p for f in built.compacted.values() for p in f}
    # the open month is still read from its day file, the closed ones only from compacted files
    sql = view_sql(built.path, "spot_order_versions")
    assert "date=2024-03-01" in sql and "date=2024-01-01" not in sql and "month=2024-01" in sql
    assert query(built.path, "SELECT count(*) FROM lake_files") == [(16,)]
    (price,) = query(built.path, "SELECT price FROM spot_orders WHERE order_id = 2 AND account = 'sub'")[0]
    assert price == Decimal(AWKWARD)
    compacted = everything(built.path)
    live = everything(build_catalog(lake, snapshot=False).path)
    assert compacted == live  # every view, every column, every type, every row (lake_files: the day files)


def test_compacted_file_layout(lake: Path) -> None:
    built = build_catalog(lake, now=NOW)
    (jan,) = [p for p in built.compacted["spot_orders"] if "account=main" in str(p) and "month=2024-01" in str(p)]
    assert jan.parent == lake.resolve() / COMPACT_DIR / "spot_orders" / "account=main" / "month=2024-01"
    table = pq.read_table(jan)
    assert table.schema.field("date").type == pa.date32() and "month" not in table.schema.names
    assert table.column("date").to_pylist() == [JAN1, JAN1, JAN1, JAN2]  # sorted by date, then symbol...
    assert table.column("symbol").to_pylist() == ["BTCUSDT", "BTCUSDT", "ETHUSDT", "BTCUSDT"]
    assert set(table.column("account").to_pylist()) == {"main"}


def test_rewriting_a_closed_day_recompacts_its_month_only_and_the_old_catalog_keeps_reading(lake: Path) -> None:
    first = build_catalog(lake, now=NOW)
    old = duckdb.connect(str(first.path), read_only=True)
    try:
        write(
            lake,
            "spot_orders",
            "main",
            JAN2,
            [spot_row(1, price="7", time=at(JAN1), update=at(JAN2, 9)), spot_row(6, price="8", time=at(JAN2, 10))],
        )
        second = build_catalog(lake, now=NOW)
        assert second.months_compacted == 1
        before, after = set(first.compacted["spot_orders"]), set(second.compacted["spot_orders"])
        (gone,), (new,) = before - after, after - before
        assert "account=main" in str(new) and "month=2024-01" in str(new) and gone.parent == new.parent
        assert gone.exists()  # the old catalog may still be reading it
        assert old.execute(
            "SELECT count(*), sum(price) FROM spot_order_versions WHERE account = 'main'"
        ).fetchall() == [(6, Decimal("100") * 4 + Decimal(AWKWARD) + Decimal("0.00000001"))]
    finally:
        old.close()
    assert query(
        second.path,
        "SELECT order_id, price FROM spot_orders WHERE account = 'main' AND date = DATE '2024-01-02' ORDER BY 1",
    ) == [(1, Decimal(7)), (6, Decimal(8))]
    assert everything(second.path) == everything(build_catalog(lake, snapshot=False).path)
    # nothing changed: every compacted file is reused as it is
    mtimes = {p: p.stat().st_mtime_ns for p in after}
    third = build_catalog(lake, now=NOW)
    assert third.months_compacted == 0 and set(third.compacted["spot_orders"]) == after
    assert {p: p.stat().st_mtime_ns for p in after} == mtimes
    # once the catalogs that read the old file are collected (grace period), the file goes too
    later = int((datetime.now(UTC) + timedelta(hours=2)).timestamp() * 1000)
    assert gc_compacted(lake, grace_seconds=3600, now_ms=later) == []  # first's snapshot still lists it
    assert first.snapshot in gc_snapshots(lake, grace_seconds=3600, now_ms=later)
    assert gc_compacted(lake, grace_seconds=3600, now_ms=later) == [gone]
    assert query(third.path, "SELECT count(*) FROM spot_order_versions") == [(13,)]


def test_a_month_is_compacted_once_it_closes(lake: Path) -> None:
    march = build_catalog(lake, now=NOW)
    april = build_catalog(lake, now=datetime(2024, 4, 1, tzinfo=UTC))
    assert april.months_compacted == 3  # spot main + sub, futures
    assert "date=2024-03-01" not in view_sql(april.path, "spot_order_versions")
    assert len(april.compacted["spot_orders"]) == len(march.compacted["spot_orders"]) + 2
    assert everything(april.path) == everything(build_catalog(lake, snapshot=False).path)


def test_schema_evolution_across_compacted_months_and_open_days(tmp_path: Path) -> None:
    data = tmp_path / "d"
    write(data, "spot_orders", "main", JAN1, [spot_row(1, time=at(JAN1))])
    newer = make_table("spot_orders", [spot_row(2, time=at(JAN2))], extra={"brand_new": pa.string()})
    write_raw(
        data,
        "spot_orders",
        "main",
        JAN2,
        newer.set_column(newer.schema.get_field_index("brand_new"), "brand_new", pa.array(["x"])),
    )
    write(data, "spot_orders", "main", FEB10, [spot_row(3, time=at(FEB10))])
    newest = make_table("spot_orders", [spot_row(4, time=at(MAR1))], extra={"newest": pa.int64()})
    write_raw(
        data,
        "spot_orders",
        "main",
        MAR1,
        newest.set_column(newest.schema.get_field_index("newest"), "newest", pa.array([42])),
    )
    built = build_catalog(data, now=NOW)
    assert len(built.compacted["spot_orders"]) == 2
    assert query(built.path, "SELECT order_id, brand_new, newest FROM spot_order_versions ORDER BY 1") == [
        (1, None, None),
        (2, "x", None),
        (3, None, None),
        (4, None, 42),
    ]
    # the same columns in the same order as one read over every day file
    assert everything(built.path) == everything(build_catalog(data, snapshot=False).path)


def test_union_by_name_only_where_the_schemas_differ(lake: Path) -> None:
    built = build_catalog(lake, now=NOW)
    assert reads(view_sql(built.path, "spot_order_versions")) == [("false", "false"), ("true", "false")]
    extra = make_table("spot_orders", [spot_row(9, time=at(MAR1, 12))], extra={"brand_new": pa.string()})
    write_raw(lake, "spot_orders", "main", date(2024, 3, 2), extra)
    rebuilt = build_catalog(lake, now=NOW)
    assert rebuilt.months_compacted == 0
    assert reads(view_sql(rebuilt.path, "spot_order_versions")) == [("false", "false"), ("true", "true")]
    assert reads(view_sql(rebuilt.path, "futures_order_versions")) == [("false", "false"), ("true", "false")]
    # a live catalog's glob may gain new columns after the build: always by name
    live = build_catalog(lake, snapshot=False)
    assert reads(view_sql(live.path, "spot_order_versions")) == [("true", "true")]


def test_empty_months_and_empty_lake(tmp_path: Path) -> None:
    data = tmp_path / "d"
    write(data, "futures_orders", "main", JAN1, [])
    built = build_catalog(data, now=NOW)
    assert len(built.compacted["futures_orders"]) == 1 and built.views["futures_orders"] == 0
    assert query(built.path, "SELECT table_name, date, rows FROM lake_files") == [("futures_orders", JAN1, 0)]
    empty = build_catalog(tmp_path / "empty", now=NOW)
    assert empty.compacted == {} and not any(empty.views.values())

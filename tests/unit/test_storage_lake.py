"""Atomic partition writes, crash safety, idempotency, empty partitions, validation, daily split, schemas."""

from __future__ import annotations

import os
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.storage import lake
from pipeline.storage.schemas import TABLES, futures_orders, module_for, spot_open_orders, spot_order_lists, spot_orders

DAY = date(2024, 3, 5)
T0 = 1709596800000  # 2024-03-05 00:00:00 UTC
H = 3_600_000


def spot_row(order_id: int, update_ms: int, symbol: str = "BTCUSDT", **extra: object) -> dict:
    row = {
        "symbol": symbol,
        "orderId": order_id,
        "orderListId": -1,
        "clientOrderId": f"c{order_id}",
        "price": "26246.51839132",
        "origQty": "9.49302035",
        "executedQty": "1.00000000",
        "cummulativeQuoteQty": "-1.00000000",
        "status": "FILLED",
        "timeInForce": "GTC",
        "type": "LIMIT",
        "side": "BUY",
        "stopPrice": "0.00000000",
        "icebergQty": "0.00000000",
        "time": update_ms - 1000,
        "updateTime": update_ms,
        "isWorking": True,
        "workingTime": -1,
        "origQuoteOrderQty": "0.00000000",
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }
    row.update(extra)
    return row


def spot_table(rows: list[dict]) -> pa.Table:
    return spot_orders.from_api(rows, account="main", source="rest_allOrders", ingested_at=T0)


def parquet_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.parquet"))


def _duck_count(data_dir: Path) -> int:
    glob = f"{data_dir.as_posix()}/lake/spot_orders/*/*/*.parquet"
    return duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()[0]


def test_partition_layout_and_roundtrip(tmp_path: Path) -> None:
    t = spot_table([spot_row(2, T0 + 2 * H), spot_row(1, T0 + H, symbol="ETHBTC"), spot_row(3, T0 + H)])
    res = lake.write_partition(tmp_path, "spot_orders", "main", DAY, t)
    assert res.path == tmp_path / "lake/spot_orders/account=main/date=2024-03-05/part-0.parquet"
    assert res.rows == 3 and res.bytes == res.path.stat().st_size
    back = lake.read_partition(tmp_path, "spot_orders", "main", DAY)
    assert back.schema == spot_orders.SCHEMA
    # sorted by (symbol, update_time, order_id) for row-group pruning
    assert [(r["symbol"], r["order_id"]) for r in back.to_pylist()] == [("BTCUSDT", 3), ("BTCUSDT", 2), ("ETHBTC", 1)]
    row = back.to_pylist()[0]
    assert row["cummulative_quote_qty"] == Decimal("-1")  # negative = unknown, kept
    assert row["working_time"] is None  # -1 sentinel -> NULL
    assert lake.list_partitions(tmp_path, "spot_orders", "main") == [DAY]


def test_rewrite_is_idempotent_one_file(tmp_path: Path) -> None:
    t = spot_table([spot_row(1, T0 + H)])
    first = lake.write_partition(tmp_path, "spot_orders", "main", DAY, t)
    again = lake.write_partition(tmp_path, "spot_orders", "main", DAY, t)
    assert first.path == again.path
    assert parquet_files(tmp_path) == [first.path]
    assert os.listdir(first.path.parent) == ["part-0.parquet"]
    assert lake.read_partition(tmp_path, "spot_orders", "main", DAY).equals(
        lake.read_partition(tmp_path, "spot_orders", "main", DAY)
    )


def test_empty_partition_is_written(tmp_path: Path) -> None:
    res = lake.write_partition(tmp_path, "spot_orders", "main", DAY, spot_table([]))
    assert res.rows == 0 and res.path.is_file()
    assert pq.read_table(res.path).num_rows == 0
    assert lake.list_partitions(tmp_path, "spot_orders", "main") == [DAY]
    assert _duck_count(tmp_path) == 0


def test_crash_mid_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = lake.write_partition(tmp_path, "spot_orders", "main", DAY, spot_table([spot_row(1, T0 + H)]))
    old_bytes = old.path.read_bytes()

    def crashing_write(table: pa.Table, fh: object) -> None:
        fh.write(b"PAR1 partial garbage" * 100)  # type: ignore[attr-defined]
        raise OSError("disk full (simulated crash mid-write)")

    monkeypatch.setattr(lake, "_write_file", crashing_write)
    with pytest.raises(OSError, match="simulated"):
        lake.write_partition(tmp_path, "spot_orders", "main", DAY, spot_table([spot_row(9, T0 + H)]))
    assert old.path.read_bytes() == old_bytes  # old content intact
    assert parquet_files(tmp_path) == [old.path]  # no partial *.parquet anywhere
    assert os.listdir(old.path.parent) == ["part-0.parquet"]  # temp removed
    assert lake.read_partition(tmp_path, "spot_orders", "main", DAY)["order_id"].to_pylist() == [1]


def test_stale_temp_from_a_killed_writer_is_removed_and_invisible(tmp_path: Path) -> None:
    res = lake.write_partition(tmp_path, "spot_orders", "main", DAY, spot_table([spot_row(1, T0 + H)]))
    stale = res.path.parent / f"{lake.TEMP_PREFIX}deadbeef{lake.TEMP_SUFFIX}"
    stale.write_bytes(b"half a parquet file")
    old = time.time() - lake.STALE_TEMP_SECONDS - 10
    os.utime(stale, (old, old))
    # DuckDB's glob never sees the temp file
    assert _duck_count(tmp_path) == 1
    lake.write_partition(tmp_path, "spot_orders", "main", DAY, spot_table([spot_row(1, T0 + H)]))
    assert not stale.exists()


def test_validation_errors(tmp_path: Path) -> None:
    t = spot_table([spot_row(1, T0 + H)])
    with pytest.raises(lake.SchemaMismatch, match="missing"):
        lake.write_partition(tmp_path, "spot_orders", "main", DAY, t.drop_columns(["price"]))
    bad_type = t.set_column(t.schema.get_field_index("price"), "price", pa.array(["1"], pa.string()))
    with pytest.raises(lake.SchemaMismatch, match="'price' has type string"):
        lake.write_partition(tmp_path, "spot_orders", "main", DAY, bad_type)
    with pytest.raises(lake.PartitionMismatch, match="account"):
        lake.write_partition(tmp_path, "spot_orders", "other", DAY, t)
    with pytest.raises(lake.PartitionMismatch, match="outside 2024-03-06"):
        lake.write_partition(tmp_path, "spot_orders", "main", date(2024, 3, 6), t)
    with pytest.raises(ValueError, match="unknown lake table"):
        lake.partition_dir(tmp_path, "nope", "main", DAY)
    with pytest.raises(ValueError, match="partition value"):
        lake.partition_dir(tmp_path, "spot_orders", "../etc", DAY)
    fut = futures_orders.from_api(
        [{"symbol": "BTCUSDT", "orderId": 1, "time": T0, "updateTime": T0}],
        account="main",
        market="usdm",
        source="rest_allOrders",
        ingested_at=T0,
    )
    with pytest.raises(lake.PartitionMismatch, match="market"):
        lake.write_partition(tmp_path, "pm_um_orders", "main", DAY, fut)
    assert parquet_files(tmp_path) == []
    with pytest.raises(lake.PartitionMissing):
        lake.read_partition(tmp_path, "spot_orders", "main", DAY)


def test_write_partitions_by_day_writes_empty_days(tmp_path: Path) -> None:
    d1, d2, d3 = date(2024, 3, 5), date(2024, 3, 6), date(2024, 3, 7)
    t = spot_table([spot_row(1, T0 + H), spot_row(2, T0 + 23 * H + 59 * 60_000), spot_row(3, T0 + 48 * H)])
    out = lake.write_partitions_by_day(tmp_path, "spot_orders", "main", t, days=[d1, d2, d3])
    assert {d: r.rows for d, r in out.items()} == {d1: 2, d2: 0, d3: 1}
    assert lake.list_partitions(tmp_path, "spot_orders", "main") == [d1, d2, d3]
    with pytest.raises(lake.PartitionMismatch, match="outside the requested"):
        lake.write_partitions_by_day(tmp_path, "spot_orders", "main", t, days=[d1])
    assert set(lake.write_partitions_by_day(tmp_path, "spot_orders", "main", t)) == {d1, d3}


def test_schemas_conditional_fields_and_extra() -> None:
    row = spot_row(
        1,
        T0 + H,
        preventedMatchId=7,
        preventedQuantity="1.20000000",
        strategyId=5,
        strategyType=1000000,
        trailingDelta=100,
        trailingTime=-1,
        usedSor=True,
        workingFloor="SOR",
        pegPriceType="PRIMARY_PEG",
        pegOffsetType="PRICE_LEVEL",
        pegOffsetValue=1,
        peggedPrice="26000.00000000",
        expiryReason="NONE",
        brandNewField="x",
    )
    r = spot_table([row]).to_pylist()[0]
    assert r["prevented_match_id"] == 7 and r["prevented_quantity"] == Decimal("1.2")
    assert r["trailing_time"] is None and r["used_sor"] is True and r["pegged_price"] == Decimal(26000)
    assert r["extra"] == '{"brandNewField": "x"}'
    for table in TABLES:
        schema = module_for(table).SCHEMA
        assert {"account", "source", "ingested_at"} <= set(schema.names)
        assert all(not pa.types.is_floating(f.type) for f in schema)
    ids = spot_table([spot_row(2**62 + 1, T0)])["order_id"].to_pylist()
    assert ids == [2**62 + 1]


def test_open_orders_and_lists_and_futures() -> None:
    oo = spot_open_orders.from_api(
        [spot_row(1, T0)], account="main", snapshot_time=T0 + H, source="rest_openOrders", ingested_at=T0 + H
    )
    assert oo.schema == spot_open_orders.SCHEMA and oo["snapshot_time"][0].value == T0 + H
    lists = spot_order_lists.from_api(
        [
            {
                "orderListId": 9,
                "contingencyType": "OCO",
                "listStatusType": "ALL_DONE",
                "listOrderStatus": "ALL_DONE",
                "listClientOrderId": "l",
                "transactionTime": T0,
                "symbol": "BTCUSDT",
                "orders": [
                    {"symbol": "BTCUSDT", "orderId": 1, "clientOrderId": "a"},
                    {"symbol": "BTCUSDT", "orderId": 2, "clientOrderId": "b"},
                ],
            }
        ],
        account="main",
        source="rest_allOrderList",
        ingested_at=T0,
    )
    assert lists["orders"].to_pylist()[0][1] == {"symbol": "BTCUSDT", "order_id": 2, "client_order_id": "b"}
    fut = futures_orders.from_api(
        [
            {
                "symbol": "BTCUSDT",
                "orderId": 8389765568816714211,
                "avgPrice": "26246.518391320001",
                "cumQuote": "12.3456789012",
                "goodTillDate": 0,
                "time": T0,
                "updateTime": T0,
                "reduceOnly": False,
            }
        ],
        account="main",
        market="pm_um",
        source="rest_allOrders",
        ingested_at=T0,
    ).to_pylist()[0]
    assert fut["order_id"] == 8389765568816714211 and fut["good_till_date"] is None
    assert fut["avg_price"] == Decimal("26246.518391320001") and fut["market"] == "pm_um"
    with pytest.raises(ValueError, match="avg_price"):
        futures_orders.from_api(
            [{"symbol": "X", "orderId": 1, "avgPrice": "1.0000000000001", "time": T0, "updateTime": T0}],
            account="a",
            market="usdm",
            source="s",
            ingested_at=T0,
        )
    with pytest.raises(ValueError, match="update_time"):
        futures_orders.from_api(
            [{"symbol": "X", "orderId": 1, "time": T0}], account="a", market="usdm", source="s", ingested_at=T0
        )

"""The day writer and the version helpers are generic: any lake table, keyed by its schema module."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.spot.fake import make_order
from pipeline.storage import day_writer, lake
from pipeline.storage.day_writer import write_days
from pipeline.storage.schemas import TABLES, schema_for, spot_orders
from pipeline.storage.versions import Versioning
from pipeline.times import day_start_ms

DAYS = [date(2024, 3, d) for d in range(1, 5)]


def _at(day: date, seconds: int) -> int:
    return day_start_ms(day) + seconds * 1000


def _orders(rows: list[dict]) -> pa.Table:
    return spot_orders.from_api(rows, account="main", source="rest_allOrders", ingested_at=0)


def _batches(table: pa.Table, size: int = 2) -> Iterator[pa.RecordBatch]:
    yield from table.to_batches(max_chunksize=size)


@pytest.mark.parametrize("table", TABLES)
def test_every_table_has_what_repeat_detection_needs(table: str) -> None:
    v = Versioning.of(table)
    schema = schema_for(table)
    assert v.id_column in v.key and pa.types.is_integer(schema.field(v.id_column).type)
    assert set(v.columns) <= set(schema.names) and v.version in v.columns and v.day_column in v.columns


def test_spot_rows_written_by_day_newest_version_per_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(day_writer, "COLD_BATCHES", 1)  # days are staged while the stream goes on
    rows = [
        make_order("ETHBTC", 1, _at(DAYS[0], 10), _at(DAYS[0], 20), status="NEW", executed="0.00000000"),
        make_order("ETHBTC", 2, _at(DAYS[0], 30)),
        make_order("BTCUSDT", 2, _at(DAYS[1], 5)),  # same id, other symbol: another key
        make_order("ETHBTC", 1, _at(DAYS[0], 10), _at(DAYS[2], 40)),  # newer version of (ETHBTC, 1) on day 3
        make_order("ETHBTC", 3, _at(DAYS[2], 50), _at(DAYS[2], 60), price="1.00000000"),
        make_order("ETHBTC", 3, _at(DAYS[2], 50), _at(DAYS[2], 60), price="2.00000000"),  # tie: the last row wins
        make_order("ETHBTC", 9, _at(date(2024, 3, 20), 1)),  # not a requested day: written to its own day
    ]
    data = tmp_path / "data"
    written = write_days(_batches(_orders(rows)), data_dir=data, table="spot_orders", account="main", days=DAYS)
    extra = date(2024, 3, 20)
    assert {d: r.rows for d, r in written.partitions.items()} == {
        DAYS[0]: 2,
        DAYS[1]: 1,
        DAYS[2]: 2,
        DAYS[3]: 0,
        extra: 1,
    }
    assert written.duplicates_dropped == 1 and written.rows_per_day[extra] == 1
    stored = {d: lake.read_partition(data, "spot_orders", "main", d).to_pylist() for d in DAYS}
    # (ETHBTC, 1)'s older version stays on its own day: every version is kept
    assert [(r["symbol"], r["order_id"], r["status"]) for r in stored[DAYS[0]]] == [
        ("ETHBTC", 1, "NEW"),
        ("ETHBTC", 2, "FILLED"),
    ]
    assert [(r["symbol"], r["order_id"]) for r in stored[DAYS[1]]] == [("BTCUSDT", 2)]
    assert [(r["order_id"], r["status"], str(r["price"])) for r in stored[DAYS[2]]] == [
        (1, "FILLED", "100.00000000"),
        (3, "FILLED", "2.00000000"),
    ]
    assert lake.list_partitions(data, "spot_orders", "main") == [*DAYS, extra]
    assert not any(p.name.startswith("days-") for p in (data / "tmp").iterdir())


def test_a_failing_stream_leaves_the_lake_untouched(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = _orders([make_order("ETHBTC", 1, _at(DAYS[0], 1))])
    write_days(_batches(first), data_dir=data, table="spot_orders", account="main", days=DAYS[:2])
    before = {p: p.read_bytes() for p in (data / "lake").rglob("*.parquet")}

    def failing() -> Iterator[pa.RecordBatch]:
        yield from _batches(_orders([make_order("ETHBTC", 2, _at(DAYS[0], 2)), make_order("X", 3, _at(DAYS[1], 3))]))
        raise ValueError("the source broke (simulated)")

    with pytest.raises(ValueError, match="simulated"):
        write_days(failing(), data_dir=data, table="spot_orders", account="main", days=DAYS[:2])
    assert {p: p.read_bytes() for p in (data / "lake").rglob("*.parquet")} == before
    assert not any((data / "tmp").iterdir())

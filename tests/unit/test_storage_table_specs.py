"""Every lake table declares its key and write semantics once (TableSpec), and the writers and the catalog use it."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from pipeline.spot.fake import make_order
from pipeline.storage import lake
from pipeline.storage.day_writer import write_days
from pipeline.storage.schemas import SPECS, TABLES, TableSpec, module_for, spec_for, spot_orders
from pipeline.storage.versions import merge_day, write_day
from pipeline.times import day_start_ms
from pipeline.warehouse import catalog

DAY = date(2024, 3, 1)
AT = day_start_ms(DAY)
# The spot order spec with a coarser key: an order id alone names an order. Writers that use the spec they are given
# treat ETHBTC #1 and BTCUSDT #1 as one order; writers that use the real spec (symbol, order_id) keep both.
BY_ID = dataclasses.replace(spot_orders.SPEC, key=("order_id",))


def _orders(*rows: dict) -> pa.Table:
    return spot_orders.from_api(list(rows), account="main", source="rest_allOrders", ingested_at=0)


SAME_ID = _orders(make_order("ETHBTC", 1, AT + 1_000, AT + 2_000), make_order("BTCUSDT", 1, AT + 1_000, AT + 3_000))


def test_every_lake_table_has_one_spec_in_the_registry() -> None:
    assert TABLES == (
        "spot_orders",
        "spot_order_lists",
        "spot_open_orders",
        "futures_orders",
        "pm_um_orders",
        "spot_trades",
        "futures_trades",
        "pm_um_trades",
        "futures_income",
        "pm_um_income",
    )
    assert all(name == spec.name for name, spec in SPECS.items())
    assert catalog.TABLES == TABLES  # the catalog builds a view per registered table, and only those
    for table in TABLES:
        assert spec_for(table).schema.equals(module_for(table).SCHEMA)
    with pytest.raises(ValueError, match="unknown lake table 'no_such_table'; known tables: spot_orders"):
        spec_for("no_such_table")


@pytest.mark.parametrize("table", TABLES)
def test_key_version_and_partition_columns_exist_and_are_never_null(table: str) -> None:
    spec = spec_for(table)
    for column in (*spec.key, spec.version, spec.partition_by):
        assert not spec.schema.field(column).nullable, column
    assert set(spec.sort_by) <= set(spec.schema.names)
    assert pa.types.is_timestamp(spec.schema.field(spec.partition_by).type)
    assert any(pa.types.is_integer(spec.schema.field(k).type) for k in spec.key)  # repeat detection needs one


def test_write_semantics_per_table() -> None:
    assert {t: s.write for t, s in SPECS.items()} == {
        "spot_orders": "merge-versions",
        "spot_order_lists": "merge-versions",
        "spot_open_orders": "snapshot",
        "futures_orders": "merge-versions",  # exports and REST merge into one day: a later file never removes an order
        "pm_um_orders": "merge-versions",
        "spot_trades": "merge-versions",  # a trade never changes: a re-fetch keeps the stored row
        "futures_trades": "merge-versions",
        "pm_um_trades": "merge-versions",
        "futures_income": "merge-versions",
        "pm_um_income": "merge-versions",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"key": ("symbol", "no_such_column")}, "columns not in its schema: no_such_column"),
        ({"key": ("client_order_id", "order_id")}, "must be non-nullable: ['client_order_id']"),
        ({"key": ()}, "at least one column"),
        ({"partition_by": "symbol"}, "must be a timestamp column"),
        ({"sort_by": ("symbol", "nope")}, "columns not in its schema: nope"),
        ({"write": "append"}, "write 'append' is not one of merge-versions, snapshot"),
        ({"write": "replace-day"}, "write 'replace-day' is not one of merge-versions, snapshot"),  # no table needs it
    ],
)
def test_a_spec_refuses_what_no_writer_could_honour(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match="table spec spot_orders: ") as exc:
        dataclasses.replace(spot_orders.SPEC, **change)
    assert message in str(exc.value)


def test_the_day_merge_uses_the_key_of_the_spec_it_is_given() -> None:
    stored = SAME_ID.slice(0, 1)
    refetch = SAME_ID.slice(1, 1)
    assert sorted(merge_day(stored, refetch, "spot_orders")["symbol"].to_pylist()) == ["BTCUSDT", "ETHBTC"]
    assert merge_day(stored, refetch, BY_ID)["symbol"].to_pylist() == ["BTCUSDT"]  # one key: the newer version


@pytest.mark.parametrize(
    ("spec", "kept"),
    [
        (spot_orders.SPEC, ["BTCUSDT", "ETHBTC"]),  # two orders, merged: the day keeps both
        (BY_ID, ["BTCUSDT"]),  # one order by this key: its newer version
        (dataclasses.replace(spot_orders.SPEC, write="snapshot"), ["BTCUSDT"]),  # the new snapshot replaces the day
    ],
)
def test_write_day_uses_the_spec_key_and_write_mode(tmp_path: Path, spec: TableSpec, kept: list[str]) -> None:
    write_day(tmp_path, spec, "main", DAY, SAME_ID.slice(0, 1))
    assert sorted(write_day(tmp_path, spec, "main", DAY, SAME_ID.slice(1, 1))["symbol"].to_pylist()) == kept
    assert sorted(lake.read_partition(tmp_path, "spot_orders", "main", DAY)["symbol"].to_pylist()) == kept


def test_the_stream_writer_dedupes_by_the_spec_key(tmp_path: Path) -> None:
    by_pair = write_days(SAME_ID.to_batches(), data_dir=tmp_path / "a", table="spot_orders", account="main")
    by_id = write_days(SAME_ID.to_batches(), data_dir=tmp_path / "b", table=BY_ID, account="main")
    assert (by_pair.partitions[DAY].rows, by_pair.duplicates_dropped) == (2, 0)
    assert (by_id.partitions[DAY].rows, by_id.duplicates_dropped) == (1, 1)
    assert lake.read_partition(tmp_path / "b", "spot_orders", "main", DAY)["symbol"].to_pylist() == ["BTCUSDT"]


def test_the_stream_writer_merges_a_stored_day_and_never_shrinks_it(tmp_path: Path) -> None:
    write_days(SAME_ID.slice(0, 1).to_batches(), data_dir=tmp_path, table="spot_orders", account="main", days=[DAY])
    written = write_days(
        SAME_ID.slice(1, 1).to_batches(), data_dir=tmp_path, table="spot_orders", account="main", days=[DAY]
    )
    assert written.partitions[DAY].rows == 2
    assert sorted(lake.read_partition(tmp_path, "spot_orders", "main", DAY)["symbol"].to_pylist()) == [
        "BTCUSDT",
        "ETHBTC",
    ]
    # a requested day without new rows keeps what is stored: it is not rewritten, let alone emptied
    before = lake.partition_path(tmp_path, "spot_orders", "main", DAY).read_bytes()
    again = write_days(iter(()), data_dir=tmp_path, table="spot_orders", account="main", days=[DAY])
    assert DAY not in again.partitions
    assert lake.partition_path(tmp_path, "spot_orders", "main", DAY).read_bytes() == before


def test_the_stream_writer_merges_by_the_spec_key_against_a_stored_day(tmp_path: Path) -> None:
    write_days(SAME_ID.slice(0, 1).to_batches(), data_dir=tmp_path, table=BY_ID, account="main", days=[DAY])
    written = write_days(SAME_ID.slice(1, 1).to_batches(), data_dir=tmp_path, table=BY_ID, account="main", days=[DAY])
    assert written.partitions[DAY].rows == 1  # one order by this key: its newer version replaces the stored one
    assert lake.read_partition(tmp_path, "spot_orders", "main", DAY)["symbol"].to_pylist() == ["BTCUSDT"]


def test_the_stream_writer_refuses_a_snapshot_table(tmp_path: Path) -> None:
    snapshot = dataclasses.replace(spot_orders.SPEC, write="snapshot")
    with pytest.raises(ValueError, match="spot_orders: write_days merges days; the table's spec says 'snapshot'"):
        write_days(SAME_ID.to_batches(), data_dir=tmp_path, table=snapshot, account="main", days=[DAY])
    assert not (tmp_path / "lake").exists()


def test_the_catalog_latest_view_partitions_by_the_spec_key() -> None:
    with duckdb.connect() as con:
        con.register("rows", SAME_ID)
        cols = catalog.describe(con, "SELECT * FROM rows")
        real = con.sql(catalog.latest_sql("SELECT * FROM rows", cols, spec_for("spot_orders"))).fetchall()
        by_id = con.sql(catalog.latest_sql("SELECT * FROM rows", cols, BY_ID)).fetchall()
    assert len(real) == 2 and len(by_id) == 1

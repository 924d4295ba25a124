"""Dataset ``spot_open_orders``: snapshots of ``openOrders`` (spot order objects, docs/binance-facts.md §Order objects).

Same columns as :mod:`spot_orders` plus ``snapshot_time`` (when the snapshot was taken). A snapshot is complete:
an EMPTY partition means "no open orders at that snapshot". Partition day = UTC date of ``snapshot_time``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa

from pipeline.storage.schemas import spot_orders
from pipeline.storage.schemas.columns import TS, Col, build_table, check_required, schema_of
from pipeline.storage.schemas.spec import TableSpec

COLUMNS: tuple[Col, ...] = (
    *spot_orders.COLUMNS[:-1],
    Col("snapshot_time", TS, nullable=False),
    spot_orders.COLUMNS[-1],
)
SCHEMA: pa.Schema = schema_of(COLUMNS)
SPEC = TableSpec(
    name="spot_open_orders",
    schema=SCHEMA,
    key=("snapshot_time", "symbol", "order_id"),
    version="snapshot_time",
    sort_by=("symbol", "update_time", "order_id"),
    partition_by="snapshot_time",
    write="snapshot",
)
SPECS: tuple[TableSpec, ...] = (SPEC,)


def from_api(
    rows: Sequence[dict],
    *,
    account: str,
    snapshot_time: datetime | int,
    source: str,
    ingested_at: datetime | int,
) -> pa.Table:
    """Open orders as Binance sent them -> table in :data:`SCHEMA` (all rows share ``snapshot_time``)."""
    constants = {"account": account, "source": source, "ingested_at": ingested_at, "snapshot_time": snapshot_time}
    table = build_table(COLUMNS, rows, constants)
    check_required(table, SCHEMA)
    return table

"""Dataset ``spot_order_lists``: ``allOrderList`` objects (OCO/OTO/OTOCO), docs/binance-facts.md §Spot allOrderList.

``orders`` is the list of member orders as Binance gives it: ``[{symbol, orderId, clientOrderId}]`` ->
``list<struct<symbol, order_id, client_order_id>>``; join to ``spot_orders`` on (symbol, order_id).
Partition day = UTC date of ``transaction_time``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa

from pipeline.storage.schemas.columns import TS, Col, build_table, check_required, schema_of
from pipeline.storage.schemas.spec import TableSpec

MEMBER = pa.struct(
    [
        pa.field("symbol", pa.string()),
        pa.field("order_id", pa.int64()),
        pa.field("client_order_id", pa.string()),
    ]
)

COLUMNS: tuple[Col, ...] = (
    Col("account", pa.string(), nullable=False),
    Col("symbol", pa.string(), "symbol", nullable=False),
    Col("order_list_id", pa.int64(), "orderListId", nullable=False),
    Col("contingency_type", pa.string(), "contingencyType"),
    Col("list_status_type", pa.string(), "listStatusType"),
    Col("list_order_status", pa.string(), "listOrderStatus"),
    Col("list_client_order_id", pa.string(), "listClientOrderId"),
    Col("transaction_time", TS, "transactionTime", nullable=False),
    Col("orders", pa.list_(MEMBER)),
    Col("source", pa.string(), nullable=False),
    Col("extra", pa.string()),
    Col("ingested_at", TS, nullable=False),
)
SCHEMA: pa.Schema = schema_of(COLUMNS)
SPEC = TableSpec(
    name="spot_order_lists",
    schema=SCHEMA,
    key=("order_list_id",),
    version="transaction_time",
    sort_by=("symbol", "transaction_time", "order_list_id"),
    partition_by="transaction_time",
    write="merge-versions",
)
SPECS: tuple[TableSpec, ...] = (SPEC,)


def _members(rows: Sequence[dict]) -> pa.Array:
    out: list[list[dict] | None] = []
    for r in rows:
        orders = r.get("orders")
        if orders is None:
            out.append(None)
            continue
        out.append(
            [
                {
                    "symbol": o.get("symbol"),
                    "order_id": int(o["orderId"]) if o.get("orderId") is not None else None,
                    "client_order_id": o.get("clientOrderId"),
                }
                for o in orders
            ]
        )
    return pa.array(out, pa.list_(MEMBER))


def from_api(rows: Sequence[dict], *, account: str, source: str, ingested_at: datetime | int) -> pa.Table:
    """Order-list objects as Binance sent them -> table in :data:`SCHEMA`."""
    constants = {"account": account, "source": source, "ingested_at": ingested_at}
    table = build_table(COLUMNS, rows, constants, ignore_keys=("orders",))
    table = table.set_column(table.schema.get_field_index("orders"), SCHEMA.field("orders"), _members(rows))
    check_required(table, SCHEMA)
    return table

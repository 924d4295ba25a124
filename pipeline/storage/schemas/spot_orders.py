"""Dataset ``spot_orders``: spot order objects from ``allOrders`` (REST or WS API).

One row per order version seen, partitioned by the UTC day of ``update_time``; the catalog's view keeps the latest.
Every decimal is ``decimal128(38, 8)``; ``working_time``/``trailing_time`` ``-1`` are NULL; ``cummulative_quote_qty``
may be negative (Binance's "not available") and is kept as sent; unknown fields go to ``extra``. Why:
docs/design/storage.md; fields: docs/binance-facts.md §Order objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa

from pipeline.storage.schemas.columns import TS, Col, build_table, check_required, dec, schema_of
from pipeline.storage.schemas.spec import TableSpec

ORDER_COLUMNS: tuple[Col, ...] = (
    Col("symbol", pa.string(), "symbol", nullable=False),
    Col("order_id", pa.int64(), "orderId", nullable=False),
    Col("order_list_id", pa.int64(), "orderListId"),  # -1 = not part of a list (kept: it is not a time)
    Col("client_order_id", pa.string(), "clientOrderId"),
    dec("price", "price"),
    dec("orig_qty", "origQty"),
    dec("executed_qty", "executedQty"),
    dec("cummulative_quote_qty", "cummulativeQuoteQty"),  # Binance's spelling; < 0 = unknown (old orders)
    Col("status", pa.string(), "status"),
    Col("time_in_force", pa.string(), "timeInForce"),
    Col("type", pa.string(), "type"),
    Col("side", pa.string(), "side"),
    dec("stop_price", "stopPrice"),
    dec("iceberg_qty", "icebergQty"),
    Col("time", TS, "time", nullable=False),
    Col("update_time", TS, "updateTime", nullable=False),
    Col("is_working", pa.bool_(), "isWorking"),
    Col("working_time", TS, "workingTime", sentinel_null=True),
    dec("orig_quote_order_qty", "origQuoteOrderQty"),
    Col("self_trade_prevention_mode", pa.string(), "selfTradePreventionMode"),
    # conditional fields (present only when their condition holds)
    Col("prevented_match_id", pa.int64(), "preventedMatchId"),
    dec("prevented_quantity", "preventedQuantity"),
    Col("strategy_id", pa.int64(), "strategyId"),
    Col("strategy_type", pa.int64(), "strategyType"),
    Col("trailing_delta", pa.int64(), "trailingDelta"),
    Col("trailing_time", TS, "trailingTime", sentinel_null=True),
    Col("used_sor", pa.bool_(), "usedSor"),
    Col("working_floor", pa.string(), "workingFloor"),
    Col("peg_price_type", pa.string(), "pegPriceType"),
    Col("peg_offset_type", pa.string(), "pegOffsetType"),
    Col("peg_offset_value", pa.int64(), "pegOffsetValue"),
    dec("pegged_price", "peggedPrice"),
    Col("expiry_reason", pa.string(), "expiryReason"),
)
META_COLUMNS: tuple[Col, ...] = (
    Col("account", pa.string(), nullable=False),
    Col("source", pa.string(), nullable=False),
    Col("extra", pa.string()),  # JSON object of fields this schema does not know yet
    Col("ingested_at", TS, nullable=False),
)
COLUMNS: tuple[Col, ...] = (META_COLUMNS[0], *ORDER_COLUMNS, *META_COLUMNS[1:])
SCHEMA: pa.Schema = schema_of(COLUMNS)
SPEC = TableSpec(
    name="spot_orders",
    schema=SCHEMA,
    key=("symbol", "order_id"),
    version="update_time",
    sort_by=("symbol", "update_time", "order_id"),
    partition_by="update_time",
    write="merge-versions",
)
SPECS: tuple[TableSpec, ...] = (SPEC,)


def from_api(rows: Sequence[dict], *, account: str, source: str, ingested_at: datetime | int) -> pa.Table:
    """Spot order objects exactly as Binance sent them (decimal strings) -> table in :data:`SCHEMA`."""
    table = build_table(COLUMNS, rows, {"account": account, "source": source, "ingested_at": ingested_at})
    check_required(table, SCHEMA)
    return table

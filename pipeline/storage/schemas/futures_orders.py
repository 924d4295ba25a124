"""Datasets ``futures_orders`` (USDⓈ-M) and ``pm_um_orders`` (Portfolio Margin UM): futures order objects
from ``allOrders`` and rows of the order-history export files, one schema for both (``market`` says which).

Decimals have scale 8, except ``avg_price`` (12) and ``cum_quote`` (10), so DuckDB products and sums do not overflow;
``good_till_date`` ``0`` is NULL. Export rows also carry ``utc_offset_minutes`` (the offset their local times were
converted from), ``download_id`` and ``uid``; these are NULL on REST rows. Unknown fields go to ``extra``. Why:
docs/design/storage.md §Exact decimals; fields: docs/binance-facts.md §Order objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa

from pipeline.storage.schemas.columns import TS, Col, build_table, check_required, dec, schema_of
from pipeline.storage.schemas.spec import TableSpec

MARKETS = {"usdm": "futures_orders", "pm_um": "pm_um_orders"}  # market -> its table
AVG_PRICE_SCALE = 12
CUM_QUOTE_SCALE = 10

COLUMNS: tuple[Col, ...] = (
    Col("account", pa.string(), nullable=False),
    Col("market", pa.string(), nullable=False),
    Col("symbol", pa.string(), "symbol", nullable=False),
    Col("order_id", pa.int64(), "orderId", nullable=False),
    Col("client_order_id", pa.string(), "clientOrderId"),
    dec("price", "price"),
    dec("avg_price", "avgPrice", AVG_PRICE_SCALE),
    dec("orig_qty", "origQty"),
    dec("executed_qty", "executedQty"),
    dec("cum_quote", "cumQuote", CUM_QUOTE_SCALE),
    Col("status", pa.string(), "status"),
    Col("time_in_force", pa.string(), "timeInForce"),
    Col("type", pa.string(), "type"),
    Col("orig_type", pa.string(), "origType"),
    Col("side", pa.string(), "side"),
    Col("position_side", pa.string(), "positionSide"),
    Col("reduce_only", pa.bool_(), "reduceOnly"),
    Col("close_position", pa.bool_(), "closePosition"),
    dec("stop_price", "stopPrice"),
    dec("activate_price", "activatePrice"),  # TRAILING_STOP_MARKET only
    dec("price_rate", "priceRate"),  # TRAILING_STOP_MARKET only (callback rate, %)
    Col("working_type", pa.string(), "workingType"),
    Col("price_protect", pa.bool_(), "priceProtect"),
    Col("price_match", pa.string(), "priceMatch"),
    Col("self_trade_prevention_mode", pa.string(), "selfTradePreventionMode"),
    Col("good_till_date", TS, "goodTillDate", sentinel_null=True),
    Col("time", TS, "time", nullable=False),
    Col("update_time", TS, "updateTime", nullable=False),
    Col("uid", pa.int64()),
    Col("source", pa.string(), nullable=False),
    Col("download_id", pa.string()),
    Col("utc_offset_minutes", pa.int32()),
    Col("extra", pa.string()),
    Col("ingested_at", TS, nullable=False),
)
SCHEMA: pa.Schema = schema_of(COLUMNS)
# Exports and REST merge into the same days, keeping versions: a later file never removes a stored order.
SPECS: tuple[TableSpec, ...] = tuple(
    TableSpec(
        name=table,
        schema=SCHEMA,
        key=("market", "symbol", "order_id"),
        version="update_time",
        sort_by=("symbol", "update_time", "order_id"),
        partition_by="update_time",
        write="merge-versions",
    )
    for table in MARKETS.values()
)


def from_api(
    rows: Sequence[dict],
    *,
    account: str,
    market: str,
    source: str,
    ingested_at: datetime | int,
    download_id: str | None = None,
) -> pa.Table:
    """Futures order objects as Binance sent them (decimal strings) -> table in :data:`SCHEMA`."""
    if market not in MARKETS:
        raise ValueError(f"unknown futures market {market!r}; expected one of {sorted(MARKETS)}")
    constants = {
        "account": account,
        "market": market,
        "source": source,
        "ingested_at": ingested_at,
        "download_id": download_id,
    }
    table = build_table(COLUMNS, rows, constants)
    check_required(table, SCHEMA)
    return table

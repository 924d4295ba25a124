"""Datasets ``futures_trades`` (USDⓈ-M) and ``pm_um_trades`` (Portfolio Margin UM): the account's futures fills from
``userTrades`` or the trade-history export, one partition per UTC day of the trade's ``time``; ``market`` says which.

Key (``market``, ``symbol``, ``trade_id``). ``qty`` is in the symbol's base asset, ``price`` and ``quote_qty`` in its
quote (margin) asset, ``realized_pnl`` in ``pnl_asset`` (the margin asset) and ``commission`` in ``commission_asset``.
Fields: docs/binance-facts.md §Futures userTrades.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa

from pipeline.storage.schemas.columns import TS, Col, build_table, check_required, dec, schema_of
from pipeline.storage.schemas.spec import TableSpec

MARKETS = {"usdm": "futures_trades", "pm_um": "pm_um_trades"}  # market -> its table

COLUMNS: tuple[Col, ...] = (
    Col("account", pa.string(), nullable=False),
    Col("market", pa.string(), nullable=False),
    Col("symbol", pa.string(), "symbol", nullable=False),
    Col("trade_id", pa.int64(), "id", nullable=False),
    Col("order_id", pa.int64(), "orderId", nullable=False),
    Col("side", pa.string(), "side"),
    Col("position_side", pa.string(), "positionSide"),
    dec("price", "price"),
    dec("qty", "qty"),
    dec("quote_qty", "quoteQty"),
    dec("realized_pnl", "realizedPnl"),
    Col("pnl_asset", pa.string(), "marginAsset"),
    dec("commission", "commission"),
    Col("commission_asset", pa.string(), "commissionAsset"),
    Col("is_buyer", pa.bool_(), "buyer"),
    Col("is_maker", pa.bool_(), "maker"),
    Col("time", TS, "time", nullable=False),
    Col("uid", pa.int64()),
    Col("source", pa.string(), nullable=False),
    Col("download_id", pa.string()),
    Col("utc_offset_minutes", pa.int32()),
    Col("extra", pa.string()),
    Col("ingested_at", TS, nullable=False),
)
SCHEMA: pa.Schema = schema_of(COLUMNS)
SPECS: tuple[TableSpec, ...] = tuple(
    TableSpec(
        name=table,
        schema=SCHEMA,
        key=("market", "symbol", "trade_id"),
        version="time",  # a trade has one version: a re-fetch keeps the stored row unless its content differs
        sort_by=("symbol", "time", "trade_id"),
        partition_by="time",
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
    margin_asset: str = "USDT",
    download_id: str | None = None,
) -> pa.Table:
    """Trade objects as Binance sent them -> table in :data:`SCHEMA`; a row without ``marginAsset`` (REST answers
    carry none) gets ``margin_asset``, the asset realized PnL is settled in."""
    if market not in MARKETS:
        raise ValueError(f"unknown futures market {market!r}; expected one of {sorted(MARKETS)}")
    rows = [r if "marginAsset" in r else {**r, "marginAsset": margin_asset} for r in rows]
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

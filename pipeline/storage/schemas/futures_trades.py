"""Datasets ``futures_trades`` (USDⓈ-M) and ``pm_um_trades`` (Portfolio Margin UM): the account's futures fills from
``userTrades`` or the trade-history export, one partition per UTC day of the trade's ``time``; ``market`` says which.

Key (``market``, ``symbol``, ``trade_id``). ``qty`` is in ``base_asset``, ``price`` and ``quote_qty`` in
``quote_asset``, ``realized_pnl`` in ``pnl_asset`` (the margin asset) and ``commission`` in ``commission_asset``; the
base, quote and margin assets come from ``exchangeInfo`` (NULL for a symbol it no longer lists). Fields:
docs/binance-facts.md §Futures userTrades.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    Col("pnl_asset", pa.string()),
    dec("commission", "commission"),
    Col("commission_asset", pa.string(), "commissionAsset"),
    Col("is_buyer", pa.bool_(), "buyer"),
    Col("is_maker", pa.bool_(), "maker"),
    Col("base_asset", pa.string()),
    Col("quote_asset", pa.string()),
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
    assets: Mapping[str, tuple[str | None, str | None, str | None]] | None = None,
    download_id: str | None = None,
) -> pa.Table:
    """Trade objects as Binance sent them -> table in :data:`SCHEMA`; ``assets``: symbol -> (base, quote, margin)."""
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
    known = assets or {}
    triples = [known.get(r["symbol"], (None, None, None)) for r in rows]
    for i, name in enumerate(("base_asset", "quote_asset", "pnl_asset")):
        column = pa.array([t[i] for t in triples], pa.string())
        table = table.set_column(SCHEMA.get_field_index(name), SCHEMA.field(name), column)
    check_required(table, SCHEMA)
    return table

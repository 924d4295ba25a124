"""Dataset ``spot_trades``: the account's spot fills from ``myTrades`` (REST or WS API), one partition per UTC day of
the trade's ``time``.

A trade never changes, so its key (``symbol``, ``trade_id``) names one row for good; a re-fetch merges and keeps what
is stored. ``qty`` is in ``base_asset``, ``price`` and ``quote_qty`` in ``quote_asset``, ``commission`` in
``commission_asset``: every amount has its asset beside it (the base and quote assets come from ``exchangeInfo``, NULL
for a pair it no longer lists). Fields: docs/binance-facts.md §Spot myTrades.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import pyarrow as pa

from pipeline.storage.schemas.columns import TS, Col, build_table, check_required, dec, schema_of
from pipeline.storage.schemas.spec import TableSpec

COLUMNS: tuple[Col, ...] = (
    Col("account", pa.string(), nullable=False),
    Col("symbol", pa.string(), "symbol", nullable=False),
    Col("trade_id", pa.int64(), "id", nullable=False),
    Col("order_id", pa.int64(), "orderId", nullable=False),
    Col("order_list_id", pa.int64(), "orderListId"),  # -1 = not part of a list
    dec("price", "price"),
    dec("qty", "qty"),
    dec("quote_qty", "quoteQty"),
    dec("commission", "commission"),
    Col("commission_asset", pa.string(), "commissionAsset"),
    Col("base_asset", pa.string()),
    Col("quote_asset", pa.string()),
    Col("time", TS, "time", nullable=False),
    Col("is_buyer", pa.bool_(), "isBuyer"),
    Col("is_maker", pa.bool_(), "isMaker"),
    Col("is_best_match", pa.bool_(), "isBestMatch"),
    Col("source", pa.string(), nullable=False),
    Col("extra", pa.string()),
    Col("ingested_at", TS, nullable=False),
)
SCHEMA: pa.Schema = schema_of(COLUMNS)
SPEC = TableSpec(
    name="spot_trades",
    schema=SCHEMA,
    key=("symbol", "trade_id"),
    version="time",  # a trade has one version; the stored row wins unless Binance corrected its content
    sort_by=("symbol", "time", "trade_id"),
    partition_by="time",
    write="merge-versions",
)
SPECS: tuple[TableSpec, ...] = (SPEC,)


def from_api(
    rows: Sequence[dict],
    *,
    account: str,
    source: str,
    ingested_at: datetime | int,
    assets: Mapping[str, tuple[str | None, str | None]] | None = None,
) -> pa.Table:
    """Trade objects as Binance sent them -> table in :data:`SCHEMA`; ``assets``: symbol -> (base, quote)."""
    table = build_table(COLUMNS, rows, {"account": account, "source": source, "ingested_at": ingested_at})
    pairs = [(assets or {}).get(r["symbol"], (None, None)) for r in rows]
    for i, name in enumerate(("base_asset", "quote_asset")):
        column = pa.array([p[i] for p in pairs], pa.string())
        table = table.set_column(SCHEMA.get_field_index(name), SCHEMA.field(name), column)
    check_required(table, SCHEMA)
    return table

"""Datasets ``futures_income`` (USDⓈ-M) and ``pm_um_income`` (Portfolio Margin UM): the income ledger from ``income``
or the transaction-history export, one partition per UTC day of the record's ``time``; ``market`` says which.

Binance's ``tranId`` is unique only within one ``incomeType`` ("trandId is unique in the same incomeType for a
user"): a trade's COMMISSION and REALIZED_PNL records share it. The key is therefore (``market``, ``income_type``,
``tran_id``, ``asset``): the asset too, because a key finer than Binance's can only keep more rows, never lose one,
and nothing documents that one transaction settles in one asset. ``income`` is in ``asset``; ``symbol`` is ``""``
for records of no symbol (transfers). Fields: docs/binance-facts.md §Futures income.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa

from pipeline.storage.schemas.columns import TS, Col, build_table, check_required, dec, schema_of
from pipeline.storage.schemas.spec import TableSpec

MARKETS = {"usdm": "futures_income", "pm_um": "pm_um_income"}  # market -> its table

COLUMNS: tuple[Col, ...] = (
    Col("account", pa.string(), nullable=False),
    Col("market", pa.string(), nullable=False),
    Col("income_type", pa.string(), "incomeType", nullable=False),
    Col("tran_id", pa.int64(), "tranId", nullable=False),
    Col("asset", pa.string(), "asset", nullable=False),
    Col("symbol", pa.string(), "symbol"),
    dec("income", "income"),
    Col("info", pa.string(), "info"),
    Col("trade_id", pa.string(), "tradeId"),  # a string on the wire, "" when the record has no trade
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
        key=("market", "income_type", "tran_id", "asset"),
        version="time",  # a record never changes
        sort_by=("time", "income_type", "tran_id"),
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
    download_id: str | None = None,
) -> pa.Table:
    """Income records as Binance sent them -> table in :data:`SCHEMA`."""
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

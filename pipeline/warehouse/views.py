"""The catalog's views, registered once: name, description (the view's COMMENT), what it is built on, and what its
own columns mean, with the asset beside every amount.

:func:`pipeline.warehouse.catalog.build_catalog` creates exactly these views, in this order, and refuses a view that
is not registered; docs/schema.md and the amount/asset test read this registry. A new view (issue 13's trades,
income, fees_daily, pnl_daily) adds a :class:`ViewSpec` here and its SQL in the catalog's view definitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from pipeline.storage import schemas
from pipeline.warehouse.columns import QUOTE, TABLE_COLUMNS, VIEW_COLUMNS, ColumnDoc

LAKE = "lake/"  # prefix of a lake table in ``based_on`` (a view may share its table's name)


def lake(table: str) -> str:
    return LAKE + table


@dataclass(frozen=True)
class ViewSpec:
    """``based_on``: the views, or lake tables (``lake("spot_orders")``), whose same-named columns it passes through
    (their meaning, asset, nullability and Binance field carry over). ``columns``: its own columns, or ones that
    mean more here."""

    name: str
    description: str
    based_on: tuple[str, ...] = ()
    columns: Mapping[str, ColumnDoc] = field(default_factory=dict)


MARKET_TABLES = {"spot": "spot_orders", "usdm": "futures_orders", "pm_um": "pm_um_orders"}
_COUNT = "orders"


def _order_views(table: str, market: str) -> tuple[ViewSpec, ViewSpec]:
    versions = table.removesuffix("s") + "_versions"
    return (
        ViewSpec(
            versions,
            f"Every stored version of every {market} order (a mutable order appears once per partition and fetch "
            f"that saw it), with its symbol's base and quote asset. Source: lake/{table}.",
            (lake(table),),
        ),
        ViewSpec(
            table,
            f"{market} orders, the LATEST version per (account, symbol, order_id): greatest update_time, then latest "
            "ingested_at. Decimals exact; base_asset and quote_asset say what the amounts are in.",
            (versions,),
        ),
    )


VIEWS: tuple[ViewSpec, ...] = (
    ViewSpec(
        "symbols",
        "Every symbol in the lake per market, with the assets its amounts are in (from exchangeInfo: the spot symbol "
        "index, /fapi/v1/exchangeInfo for usdm and pm_um); NULL assets: no exchangeInfo listed it while orderlake "
        "looked.",
        columns={
            "market": ColumnDoc("spot, usdm or pm_um.", source="the lake table", nullable=False),
            "symbol": ColumnDoc("Binance symbol, as in the lake.", source="the lake table", nullable=False),
            "margin_asset": ColumnDoc(
                "Futures: the asset margin and PnL are settled in (exchangeInfo marginAsset); NULL for spot.",
                source="exchangeInfo marginAsset",
                nullable=True,
            ),
        },
    ),
    *_order_views("spot_orders", "Spot"),
    ViewSpec(
        "spot_order_lists",
        "Spot order lists (OCO/OTO/OTOCO) from allOrderList, latest version per (account, order_list_id) by "
        "transaction_time. Source: lake/spot_order_lists.",
        (lake("spot_order_lists"),),
    ),
    ViewSpec(
        "spot_open_orders",
        "Spot open orders of the latest snapshot per account (an empty latest snapshot means no open orders), with "
        "their symbol's assets.",
        (lake("spot_open_orders"),),
    ),
    *_order_views("futures_orders", "USDⓈ-M futures"),
    *_order_views("pm_um_orders", "Portfolio Margin UM"),
    ViewSpec(
        "spot_trades",
        "Spot fills (myTrades), one row per (account, symbol, trade_id); qty in base_asset, price and quote_qty in "
        "quote_asset, commission in commission_asset.",
        (lake("spot_trades"),),
    ),
    ViewSpec(
        "orders",
        "All markets in one view (market = spot | usdm | pm_um) with the common columns and each row's assets. "
        "quote_qty = spot cummulative_quote_qty / futures cum_quote; avg_price = quote_qty / executed_qty for spot "
        "(exact), Binance's avgPrice for futures; NULL when nothing executed or the quote is unknown (< 0).",
        tuple(MARKET_TABLES.values()),
        {
            "market": ColumnDoc("spot, usdm or pm_um.", source="which view the row comes from", nullable=False),
            "quote_qty": ColumnDoc(
                "Quote amount filled: spot cummulative_quote_qty (negative = unknown), futures cum_quote.",
                asset=QUOTE,
                source="cummulativeQuoteQty (spot), cumQuote (futures)",
                nullable=True,
            ),
            "avg_price": ColumnDoc(
                "Average fill price: spot quote_qty / executed_qty rounded half-up to the scale, futures avgPrice; "
                "NULL when nothing filled or the quote is unknown.",
                asset=QUOTE,
                source="derived (spot), avgPrice (futures)",
                nullable=True,
            ),
        },
    ),
    ViewSpec(
        "daily_activity",
        "Per UTC day the order was PLACED (day, from orders.time), account, market, symbol and quote asset: orders "
        "placed, filled_orders (executed_qty > 0, includes partial fills later canceled), fully_filled_orders "
        "(status FILLED), filled_notional = exact sum of quote_qty of the filled orders, in quote_asset, with its "
        "buy/sell split (quote unknown (< 0) excluded and counted in unknown_notional_orders). Amounts of different "
        "quote assets are never added: sum them per quote_asset.",
        ("orders",),
        {
            "day": ColumnDoc("UTC day the order was placed.", source="orders.time", nullable=False),
            _COUNT: ColumnDoc("Orders placed that day.", unit="orders", source="count(*)", nullable=False),
            "filled_orders": ColumnDoc(
                "Orders with executed_qty > 0.", unit="orders", source="count(*) FILTER", nullable=False
            ),
            "fully_filled_orders": ColumnDoc(
                "Orders with status FILLED.", unit="orders", source="count(*) FILTER", nullable=False
            ),
            "filled_notional": ColumnDoc(
                "Sum of quote_qty over the filled orders with a known quote.",
                asset=QUOTE,
                source="sum(orders.quote_qty)",
                nullable=False,
            ),
            "buy_notional": ColumnDoc(
                "filled_notional of the BUY orders.", asset=QUOTE, source="sum(orders.quote_qty)", nullable=False
            ),
            "sell_notional": ColumnDoc(
                "filled_notional of the SELL orders.", asset=QUOTE, source="sum(orders.quote_qty)", nullable=False
            ),
            "unknown_notional_orders": ColumnDoc(
                "Filled orders whose quote amount Binance does not know (spot cummulativeQuoteQty < 0).",
                unit="orders",
                source="count(*) FILTER",
                nullable=False,
            ),
        },
    ),
    ViewSpec(
        "lake_files",
        "One row per Parquet partition file in the lake: table, account, date, rows, bytes, path. Empty partitions "
        "(0 rows) are real: the day was fetched and had no rows.",
        columns={
            "table_name": ColumnDoc("Lake table.", source="file path", nullable=False),
            "account": ColumnDoc("Account of the partition.", source="path `account=`", nullable=False),
            "date": ColumnDoc("Day of the partition (UTC).", source="path `date=`", nullable=False),
            "rows": ColumnDoc("Rows in the file.", unit="rows", source="Parquet footer", nullable=False),
            "bytes": ColumnDoc("Size of the file.", unit="bytes", source="Parquet footer", nullable=False),
            "path": ColumnDoc("Absolute path of the file in the lake.", source="file path", nullable=False),
        },
    ),
    ViewSpec(
        "coverage",
        "Per table and account: partitions present, first/last date, missing days between them, rows.",
        ("lake_files",),
        {
            "partitions": ColumnDoc("Partition files.", unit="files", source="count(*)", nullable=False),
            "first_date": ColumnDoc("First partition day.", source="min(date)", nullable=False),
            "last_date": ColumnDoc("Last partition day.", source="max(date)", nullable=False),
            "missing_days": ColumnDoc(
                "Days between first_date and last_date without a partition.", unit="days", nullable=False
            ),
            "empty_partitions": ColumnDoc("Partitions with 0 rows.", unit="files", nullable=False),
        },
    ),
)
SPECS: dict[str, ViewSpec] = {v.name: v for v in VIEWS}


def column_doc(relation: str, column: str) -> ColumnDoc:
    """What ``column`` of a view or lake table (``lake(name)``) means, with its nullability resolved.

    KeyError: the column is documented nowhere (a test keeps every column of every view and table documented).
    """
    if relation.startswith(LAKE):
        table = relation.removeprefix(LAKE)
        doc = TABLE_COLUMNS[column]
        return replace(doc, nullable=schemas.schema_for(table).field(column).nullable)
    spec = SPECS[relation]
    carriers = [r for r in spec.based_on if column in relation_columns(r)]
    doc = spec.columns.get(column) or VIEW_COLUMNS.get(column)
    if doc is None:
        if not carriers:
            raise KeyError(f"{relation}.{column} is not documented")
        doc = column_doc(carriers[0], column)
    if doc.nullable is not None:
        return doc
    if not carriers:
        raise KeyError(f"{relation}.{column}: no nullability (it is in none of {spec.based_on or 'its sources'})")
    return replace(doc, nullable=any(column_doc(r, column).nullable for r in carriers))


def relation_columns(relation: str) -> tuple[str, ...]:
    """Column names of a lake table, or of a view as its documentation knows them (its own and its sources')."""
    if relation.startswith(LAKE):
        return tuple(schemas.schema_for(relation.removeprefix(LAKE)).names)
    spec = SPECS[relation]
    names = dict.fromkeys(spec.columns)
    for source in spec.based_on:
        names.update(dict.fromkeys(relation_columns(source)))
    return tuple(names)


def asset_of(relation: str, column: str) -> str | None:
    """The column naming ``column``'s asset when ``column`` is an amount, else None (KeyError: undocumented)."""
    return column_doc(relation, column).asset

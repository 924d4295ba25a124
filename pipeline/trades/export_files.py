"""Trade-history and transaction (income) history export files -> rows of ``futures_trades`` / ``futures_income``.

The same streaming parser as the order exports (:mod:`pipeline.exports.parsing`), with each file kind's own alias
table: columns are bound by header name, never by position, and every dialect of the public record is read
(docs/export-files.md §Trade history and §Transaction (income) history). A fee carries its asset (``0.00352911 BNB``,
``0.03682290USDT``) unless a fee-asset column gives it; booleans are ``true``/``TRUE``/``Y``; income records of no
symbol (an empty cell) read as ``""``, as REST sends them; a column the file lacks stays NULL.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.exports.parsing.binding import Binding
from pipeline.exports.parsing.convert import ConvertContext, _bools, _constant, _extra, ints, times
from pipeline.exports.parsing.stream import FileKind
from pipeline.exports.parsing.values import enum_values, strip_asset_suffix
from pipeline.storage.decimals import DecimalError, to_decimal_array
from pipeline.storage.schemas import futures_income, futures_trades
from pipeline.storage.schemas.columns import EXPORT

TRADE_SOURCE = INCOME_SOURCE = EXPORT

# canonical column -> accepted header spellings (normalised: lower case, single spaces); sources in
# docs/export-files.md §Trade history. "Amount" is the QUOTE amount in a trade file, "Quantity" the base quantity.
TRADE_ALIASES: dict[str, tuple[str, ...]] = {
    "uid": ("uid", "user id", "用户id"),
    "time": ("time", "date", "trade time", "时间"),
    "symbol": ("symbol", "contract", "pair"),
    "side": ("side", "direction"),
    "position_side": ("position side",),
    "price": ("price",),
    "qty": ("quantity", "qty", "executed qty"),
    "quote_qty": ("amount", "quote quantity", "quote qty", "quoteqty"),
    "commission": ("fee", "commission", "trading fee"),
    "commission_asset": ("fee asset", "fee coin", "fee currency", "commission asset"),
    "realized_pnl": ("realized profit", "realized pnl", "realizedpnl"),
    "is_buyer": ("buyer", "is buyer"),
    "is_maker": ("maker", "is maker"),
    "trade_id": ("trade id", "tradeid"),
    "order_id": ("order id", "orderid", "order no"),
}
TRADE_REQUIRED = ("time", "symbol", "side", "price", "qty", "quote_qty", "commission", "trade_id", "order_id")
# docs/export-files.md §Transaction (income) history
INCOME_ALIASES: dict[str, tuple[str, ...]] = {
    "uid": ("uid", "user id", "用户id"),
    "time": ("time", "date", "时间"),
    "income_type": ("type", "income type", "incometype", "transaction type"),
    "income": ("amount", "income", "change"),
    "asset": ("asset", "coin", "currency"),
    "symbol": ("symbol",),
    "tran_id": ("transaction id", "tran id", "tranid", "transactionid"),
    "info": ("info",),
    "trade_id": ("trade id", "tradeid"),
}
INCOME_REQUIRED = ("time", "income_type", "income", "asset", "tran_id")
_FEE = re.compile(r"^\s*([+-]?[0-9][0-9,]*(?:\.[0-9]*)?)\s*([A-Za-z][A-Za-z0-9]*)?\s*$")
# amounts that may carry an asset suffix, as the order parser checks them: the base asset, else the quote asset
_SUFFIX_AS = {"qty": "executed_qty", "price": "price", "quote_qty": "cum_quote", "realized_pnl": "price"}


def _decimals(arr: pa.Array, col: str, header: str, ctx: ConvertContext, schema: pa.Schema, symbols: pa.Array | None):
    if symbols is not None and col in _SUFFIX_AS:
        arr, bad = strip_asset_suffix(arr, symbols, _SUFFIX_AS[col], ctx.assets)
        if bad is not None:
            raise ctx.bad(header, bad[0], bad[1], bad[2])
    try:
        return to_decimal_array(arr, scale=schema.field(col).type.scale, column=col, allow_thousands=True)
    except DecimalError as exc:
        raise ctx.bad(header, exc.row, exc.value, str(exc)) from None


def split_fee(arr: pa.Array, header: str, ctx: ConvertContext) -> tuple[pa.Array, pa.Array]:
    """``0.00352911 BNB`` / ``0.03682290USDT`` / ``0.4`` -> (amount text, asset or NULL)."""
    amounts: list[str | None] = []
    assets: list[str | None] = []
    for i, value in enumerate(arr.to_pylist()):
        if value is None:
            amounts.append(None)
            assets.append(None)
            continue
        m = _FEE.match(value)
        if m is None:
            raise ctx.bad(header, i, value, "not a fee: an amount, optionally followed by its asset")
        amounts.append(m.group(1))
        assets.append(m.group(2).upper() if m.group(2) else None)
    return pa.array(amounts, pa.string()), pa.array(assets, pa.string())


def _columns(batch: pa.RecordBatch, binding: Binding, ctx: ConvertContext, schema: pa.Schema, source: str) -> dict:
    """The constant columns and every bound column converted by its schema type."""
    n = batch.num_rows
    out: dict[str, pa.Array] = {
        "account": _constant(ctx.account, n, pa.string(), ctx.cache),
        "market": _constant(ctx.market, n, pa.string(), ctx.cache),
        "source": _constant(source, n, pa.string(), ctx.cache),
        "download_id": _constant(ctx.download_id, n, pa.string(), ctx.cache),
        "utc_offset_minutes": _constant(ctx.offset, n, pa.int32(), ctx.cache),
        "extra": _extra(batch, binding) if binding.unknown else _constant(None, n, pa.string(), ctx.cache),
    }
    ts = schema.field("ingested_at").type
    out["ingested_at"] = _constant(pa.scalar(ctx.ingested_at_ms, pa.int64()).cast(ts).as_py(), n, ts, ctx.cache)
    symbols = batch.column(binding.columns["symbol"]) if "symbol" in binding.columns else None
    for col, csv_name in binding.columns.items():
        arr = batch.column(csv_name)
        typ = schema.field(col).type
        if col == "commission":
            amount, asset = split_fee(arr, csv_name, ctx)
            out[col] = _decimals(amount, col, csv_name, ctx, schema, None)
            if "commission_asset" not in binding.columns:
                out["commission_asset"] = asset
        elif col == "time":
            out[col] = times(arr, col, csv_name, ctx)
        elif pa.types.is_decimal(typ):
            out[col] = _decimals(arr, col, csv_name, ctx, schema, symbols)
        elif pa.types.is_integer(typ):
            out[col] = ints(arr, csv_name, ctx).cast(typ)
        elif pa.types.is_boolean(typ):
            out[col] = _bools(arr, csv_name, ctx)
        elif col in ("side", "position_side"):
            out[col], bad = enum_values(arr, col)
            if bad is not None:
                raise ctx.bad(csv_name, bad[0], bad[1], f"not a {col} value the API knows")
        else:
            out[col] = pc.utf8_trim_whitespace(arr)
    return out


def _assemble(out: dict[str, pa.Array], n: int, schema: pa.Schema, binding: Binding, ctx: ConvertContext):
    arrays = []
    for f in schema:
        arr = out.get(f.name)
        if arr is None:
            arr = _constant(None, n, f.type, ctx.cache)
        if not f.nullable and arr.null_count:
            i = int(pc.index(pc.is_null(arr), True).as_py())
            header = binding.columns.get(f.name, f.name)
            raise ctx.bad(header, i, None, "empty, but every row needs it")
        arrays.append(arr)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def convert_trades(batch: pa.RecordBatch, binding: Binding, ctx: ConvertContext) -> pa.RecordBatch:
    """One all-string CSV batch of a trade-history export -> ``futures_trades`` rows (assets added by ingest)."""
    out = _columns(batch, binding, ctx, futures_trades.SCHEMA, TRADE_SOURCE)
    return _assemble(out, batch.num_rows, futures_trades.SCHEMA, binding, ctx)


def convert_income(batch: pa.RecordBatch, binding: Binding, ctx: ConvertContext) -> pa.RecordBatch:
    """One all-string CSV batch of a transaction-history export -> ``futures_income`` rows."""
    out = _columns(batch, binding, ctx, futures_income.SCHEMA, INCOME_SOURCE)
    n = batch.num_rows
    for col in ("symbol", "info", "trade_id"):  # an empty cell is REST's "" (no symbol, no trade); a column the
        if col in binding.columns:  # file lacks stays NULL: unknown
            out[col] = pc.fill_null(out[col], "")
    out["income_type"] = pc.replace_substring_regex(pc.utf8_upper(out["income_type"]), r"[\s\-]+", "_")
    return _assemble(out, n, futures_income.SCHEMA, binding, ctx)


TRADES = FileKind("futures TRADE-history export", TRADE_ALIASES, TRADE_REQUIRED, convert_trades, futures_trades.MARKETS)
INCOME = FileKind(
    "futures TRANSACTION (income) history export",
    INCOME_ALIASES,
    INCOME_REQUIRED,
    convert_income,
    futures_income.MARKETS,
)
KINDS = {"trade": TRADES, "income": INCOME}

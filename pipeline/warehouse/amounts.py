"""Where the views' amounts meet their assets: the ``symbols`` view, the base and quote asset columns beside every
order view's amounts, ``orders`` (every market) and ``daily_activity`` (per quote asset, never summed across assets).

Assets come from exchangeInfo (:mod:`pipeline.warehouse.symbols`); a symbol without known assets keeps NULL ones.
Design: docs/design/catalog.md §Amounts and assets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline.warehouse.reads import lit, q
from pipeline.warehouse.symbols import KnownAssets
from pipeline.warehouse.views import MARKET_TABLES

DEFAULT_DECIMAL_SCALE = 8
ASSET_COLUMNS = ("base_asset", "quote_asset")
SYMBOLS_COLUMNS = ("market", "symbol", "base_asset", "quote_asset", "margin_asset")
_TS = "TIMESTAMP WITH TIME ZONE"


# -- symbols and the asset columns ----------------------------------------------------------------------------------
def lake_symbols(con: Any, sources: dict[str, str]) -> list[tuple[str, str]]:
    """(market, symbol) of every order and open-order row: the symbols whose assets the views need."""
    parts = [f"SELECT DISTINCT {lit(m)} AS market, symbol FROM ({sources[t]})" for m, t in MARKET_TABLES.items()]
    parts.append(f"SELECT DISTINCT 'spot' AS market, symbol FROM ({sources['spot_open_orders']})")
    return [(m, s) for m, s in con.execute(" UNION ".join(parts) + " ORDER BY 1, 2").fetchall()]


def symbols_sql(pairs: Iterable[tuple[str, str]], known: KnownAssets) -> str:
    """The ``symbols`` view: every (market, symbol) of the lake with its assets (NULL when unknown), as literals."""

    def literal(value: str | None) -> str:
        return "NULL" if value is None else lit(value)

    rows = [known.get(m, s) for m, s in pairs]
    values = [
        "(" + ", ".join(literal(v) for v in (a.market, a.symbol, a.base_asset, a.quote_asset, a.margin_asset)) + ")"
        for a in rows
    ]
    typed = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" for c in SYMBOLS_COLUMNS)
    body = ", ".join(values) or "(NULL, NULL, NULL, NULL, NULL)"
    return f"SELECT {typed} FROM (VALUES {body}) AS v({', '.join(SYMBOLS_COLUMNS)})" + (
        "" if values else " WHERE false"
    )


def with_assets(base: str, columns: Iterable[str], market: str) -> str:
    """``base`` with ``base_asset`` and ``quote_asset`` right after ``symbol``, from the ``symbols`` view."""
    out: list[str] = []
    for c in columns:
        out.append(f"t.{q(c)}")
        if c == "symbol":
            out += [f"s.{asset}" for asset in ASSET_COLUMNS]
    return (
        f"SELECT {', '.join(out)} FROM ({base}) AS t "
        f"LEFT JOIN symbols AS s ON s.market = {lit(market)} AND s.symbol = t.symbol"
    )


# -- orders and daily_activity --------------------------------------------------------------------------------------
def _decimal_scale(dtype: str) -> int | None:
    if dtype.startswith("DECIMAL("):
        return int(dtype[len("DECIMAL(") : -1].split(",")[1])
    return None


def _exact_ratio(num: str, den: str, num_scale: int, den_scale: int, out_scale: int) -> str:
    """num / den rounded half-up to ``out_scale`` decimals, in integer arithmetic (DuckDB's DECIMAL / DECIMAL is a
    DOUBLE). Only for num >= 0 and den > 0."""
    un = f"CAST({num} * {10**num_scale} AS HUGEINT)"
    ud = f"CAST({den} * {10**den_scale} AS HUGEINT)"
    shift = 10 ** (out_scale + den_scale - num_scale) if out_scale + den_scale >= num_scale else 1
    unit = "0." + "0" * (out_scale - 1) + "1" if out_scale else "1"
    # DECIMAL(38,0) * DECIMAL(38,s) is an exact DECIMAL(38,s): the integer result scaled back, no float anywhere
    return f"(CAST(({un} * {shift} + {ud} // 2) // {ud} AS DECIMAL(38,0)) * CAST('{unit}' AS DECIMAL(38,{out_scale})))"


ORDERS_COLUMNS = (
    "account",
    "market",
    "symbol",
    "base_asset",
    "quote_asset",
    "order_id",
    "client_order_id",
    "side",
    "type",
    "status",
    "price",
    "orig_qty",
    "executed_qty",
    "quote_qty",
    "avg_price",
    "time",
    "update_time",
    "date",
)
_ORDERS_TYPES = {
    "account": "VARCHAR",
    "market": "VARCHAR",
    "symbol": "VARCHAR",
    "base_asset": "VARCHAR",
    "quote_asset": "VARCHAR",
    "order_id": "BIGINT",
    "client_order_id": "VARCHAR",
    "side": "VARCHAR",
    "type": "VARCHAR",
    "status": "VARCHAR",
    "time": _TS,
    "update_time": _TS,
    "date": "DATE",
}
_DECIMAL_COLS = ("price", "orig_qty", "executed_qty", "quote_qty", "avg_price")


def _market_exprs(market: str, cols: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """Column name -> (SQL expression, source type) for one market's branch of the ``orders`` view."""

    def col(name: str) -> tuple[str, str | None]:
        return (q(name), cols[name]) if name in cols else ("NULL", None)

    out = {c: col(c) for c in ORDERS_COLUMNS if c not in ("market", "quote_qty", "avg_price")}
    out["market"] = (lit(market), "VARCHAR")
    quote_name = "cummulative_quote_qty" if market == "spot" else "cum_quote"
    out["quote_qty"] = col(quote_name)
    filled = "executed_qty > 0" if "executed_qty" in cols else "false"
    if market == "spot":
        qs, es = _decimal_scale(cols.get(quote_name, "")), _decimal_scale(cols.get("executed_qty", ""))
        if qs is not None and es is not None:
            ratio = _exact_ratio(q(quote_name), "executed_qty", qs, es, max(qs, es, DEFAULT_DECIMAL_SCALE))
            # a negative cummulativeQuoteQty (old orders) means "unknown"
            out["avg_price"] = (
                f"CASE WHEN {filled} AND {q(quote_name)} >= 0 THEN {ratio} END",
                f"DECIMAL(38,{max(qs, es, DEFAULT_DECIMAL_SCALE)})",
            )
        else:
            out["avg_price"] = ("NULL", None)
    else:
        # Binance sends avgPrice "0" for orders that never traded: NULL, like spot
        out["avg_price"] = (
            (f"CASE WHEN {filled} THEN avg_price END", cols["avg_price"]) if "avg_price" in cols else ("NULL", None)
        )
    return out


def orders_sql(branches: dict[str, dict[str, str]]) -> str:
    """UNION ALL of the market views with explicit casts.

    The casts matter: DuckDB's union of DECIMAL(38,8) and DECIMAL(38,12) is DECIMAL(38,8) (it would ROUND), so every
    decimal column is cast to DECIMAL(38, max scale over the markets) first.
    """
    exprs = {m: _market_exprs(m, cols) for m, cols in branches.items()}
    types = dict(_ORDERS_TYPES)
    for c in _DECIMAL_COLS:
        scales = [_decimal_scale(t or "") for e in exprs.values() for _, t in [e[c]]]
        types[c] = f"DECIMAL(38,{max([s for s in scales if s is not None] + [DEFAULT_DECIMAL_SCALE])})"
    parts = []
    for market, ex in exprs.items():
        select = ", ".join(f"CAST({ex[c][0]} AS {types[c]}) AS {q(c)}" for c in ORDERS_COLUMNS)
        parts.append(f"SELECT {select} FROM {q(MARKET_TABLES[market])}")
    return "\nUNION ALL\n".join(parts)


DAILY_ACTIVITY_SQL = """
SELECT CAST(timezone('UTC', coalesce("time", update_time)) AS DATE) AS day, account, market, symbol, quote_asset,
       count(*) AS orders,
       count(*) FILTER (WHERE executed_qty > 0) AS filled_orders,
       count(*) FILTER (WHERE status = 'FILLED') AS fully_filled_orders,
       coalesce(sum(quote_qty) FILTER (WHERE executed_qty > 0 AND quote_qty >= 0), 0) AS filled_notional,
       coalesce(sum(quote_qty) FILTER (WHERE executed_qty > 0 AND quote_qty >= 0 AND side = 'BUY'), 0)
           AS buy_notional,
       coalesce(sum(quote_qty) FILTER (WHERE executed_qty > 0 AND quote_qty >= 0 AND side = 'SELL'), 0)
           AS sell_notional,
       count(*) FILTER (WHERE executed_qty > 0 AND (quote_qty IS NULL OR quote_qty < 0)) AS unknown_notional_orders
FROM orders
GROUP BY day, account, market, symbol, quote_asset
"""

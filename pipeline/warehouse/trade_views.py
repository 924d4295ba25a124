"""The catalog's views over trades and income: ``trades`` and ``income`` across markets, ``fees_daily`` and
``pnl_daily``, and the query behind the orders-to-trades check.

Every amount has its asset beside it and no sum ever adds two assets: ``fees_daily`` groups by commission asset,
``pnl_daily`` by income asset. Decimal columns are cast to one type across markets before the union (DuckDB would
otherwise round a wider scale down to the narrower one). Design: docs/design/trades.md §Views.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.storage.lakefs import connect_catalog
from pipeline.warehouse.reads import q

# market -> (trades table, income table or None)
TRADE_TABLES = {"spot": "spot_trades", "usdm": "futures_trades", "pm_um": "pm_um_trades"}
INCOME_TABLES = {"usdm": "futures_income", "pm_um": "pm_um_income"}
FUTURES_TABLES = ("futures_trades", "pm_um_trades", "futures_income", "pm_um_income")
MONEY = "DECIMAL(38,8)"

# column -> (type, spot expression, futures expression)
_TRADE_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("account", "VARCHAR", "account", "account"),
    ("symbol", "VARCHAR", "symbol", "symbol"),
    ("order_id", "BIGINT", "order_id", "order_id"),
    ("trade_id", "BIGINT", "trade_id", "trade_id"),
    ("side", "VARCHAR", "CASE WHEN is_buyer THEN 'BUY' ELSE 'SELL' END", "side"),
    ("price", MONEY, "price", "price"),
    ("qty", MONEY, "qty", "qty"),
    ("base_asset", "VARCHAR", "base_asset", "base_asset"),
    ("quote_qty", MONEY, "quote_qty", "quote_qty"),
    ("quote_asset", "VARCHAR", "quote_asset", "quote_asset"),
    ("commission", MONEY, "commission", "commission"),
    ("commission_asset", "VARCHAR", "commission_asset", "commission_asset"),
    ("realized_pnl", MONEY, "NULL", "realized_pnl"),
    ("pnl_asset", "VARCHAR", "NULL", "pnl_asset"),
    ("is_buyer", "BOOLEAN", "is_buyer", "is_buyer"),
    ("is_maker", "BOOLEAN", "is_maker", "is_maker"),
    ("time", "TIMESTAMP WITH TIME ZONE", "time", "time"),
    ("source", "VARCHAR", "source", "source"),
)


def trades_sql() -> str:
    """Every market's trades in one view, ``market`` = spot | usdm | pm_um."""
    parts = []
    for market, table in TRADE_TABLES.items():
        exprs = [
            f"CAST({spot if market == 'spot' else fut} AS {typ}) AS {q(name)}"
            for name, typ, spot, fut in _TRADE_COLUMNS
        ]
        parts.append(f"SELECT '{market}' AS market, {', '.join(exprs)} FROM {q(table)}")
    return "\nUNION ALL\n".join(parts)


def income_sql() -> str:
    """Every futures market's income ledger in one view."""
    cols = "account, symbol, income_type, CAST(income AS DECIMAL(38,8)) AS income, asset, info, tran_id, trade_id, time"
    return "\nUNION ALL\n".join(
        f"SELECT '{market}' AS market, {cols}, source FROM {q(table)}" for market, table in INCOME_TABLES.items()
    )


FEES_DAILY_SQL = """
SELECT CAST(timezone('UTC', time) AS DATE) AS day, account, market, commission_asset,
       sum(commission) AS commission, count(*) AS trades
FROM trades
GROUP BY ALL
"""

# Futures from the income ledger (what was settled), spot from its trades' commissions (spot has no PnL ledger).
PNL_DAILY_SQL = """
SELECT CAST(timezone('UTC', time) AS DATE) AS day, account, market, symbol, asset,
       coalesce(sum(income) FILTER (WHERE income_type = 'REALIZED_PNL'), 0) AS realized_pnl,
       coalesce(sum(income) FILTER (WHERE income_type = 'FUNDING_FEE'), 0) AS funding,
       coalesce(sum(income) FILTER (WHERE income_type = 'COMMISSION'), 0) AS commission
FROM income
WHERE income_type IN ('REALIZED_PNL', 'FUNDING_FEE', 'COMMISSION')
GROUP BY ALL
UNION ALL
SELECT CAST(timezone('UTC', time) AS DATE) AS day, account, market, symbol, commission_asset AS asset,
       CAST(0 AS DECIMAL(38,8)) AS realized_pnl, CAST(0 AS DECIMAL(38,8)) AS funding, -sum(commission) AS commission
FROM trades
WHERE market = 'spot'
GROUP BY ALL
"""

# Filled orders whose trades do not add up to their executed quantity, among those whose fills all lie on days the
# market's trades table covers (elsewhere a difference is a coverage gap, which `coverage` shows, not an error).
ORDER_TRADE_MISMATCHES_SQL = """
WITH sums AS (
    SELECT market, account, symbol, order_id, base_asset, sum(qty) AS trades_qty, count(*) AS trades
    FROM trades GROUP BY ALL
),
covered AS (
    SELECT CASE table_name WHEN 'spot_trades' THEN 'spot' WHEN 'futures_trades' THEN 'usdm' ELSE 'pm_um' END
               AS market, account, date
    FROM lake_files WHERE table_name IN ('spot_trades', 'futures_trades', 'pm_um_trades')
),
spans AS (
    SELECT market, account, symbol, order_id, status, executed_qty, base_asset,
           CAST(timezone('UTC', "time") AS DATE) AS first_day, CAST(timezone('UTC', update_time) AS DATE) AS last_day
    FROM orders WHERE executed_qty > 0
)
SELECT o.market, o.account, o.symbol, o.order_id, o.status, o.executed_qty, o.base_asset,
       coalesce(s.trades_qty, 0) AS trades_qty, coalesce(s.trades, 0) AS trades
FROM spans o LEFT JOIN sums s ON s.market = o.market AND s.account = o.account AND s.symbol = o.symbol
    AND s.order_id = o.order_id
WHERE coalesce(s.trades_qty, 0) <> o.executed_qty
  AND (SELECT count(DISTINCT c.date) FROM covered c
       WHERE c.market = o.market AND c.account = o.account AND c.date BETWEEN o.first_day AND o.last_day)
      = date_diff('day', o.first_day, o.last_day) + 1
"""


def order_trade_mismatches(catalog: Path, examples: int = 10) -> tuple[int, list[str]]:
    """How many filled orders' trades do not add up (on covered days), and a few of them, from a built catalog."""
    with connect_catalog(catalog) as con:
        (count,) = con.sql("SELECT count(*) FROM order_trade_mismatches").fetchone() or (0,)
        rows = con.sql(
            "SELECT market, account, symbol, order_id, executed_qty, trades_qty FROM order_trade_mismatches "
            f"ORDER BY ALL LIMIT {int(examples)}"
        ).fetchall()
    return int(count), [f"{m} {a} {s} {o}: executed {e}, trades {t}" for m, a, s, o, e, t in rows]

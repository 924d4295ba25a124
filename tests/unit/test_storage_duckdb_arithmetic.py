"""The decimal scales must let analysts do exact DuckDB arithmetic without casts or overflow.

DuckDB gives a product of DECIMALs the sum of the scales (capped at width 38): DECIMAL(38,18) * DECIMAL(38,18)
overflows above ~100. These queries run on Parquet files written by the lake writer, on realistic magnitudes.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, localcontext

import duckdb
import pyarrow as pa
import pytest

from pipeline.storage import lake
from pipeline.storage.schemas import futures_orders, spot_orders

DAY = date(2024, 3, 5)
T0 = 1709596800000  # 2024-03-05 00:00:00 UTC
N = 1_000_000

BTC = {"price": "100000.12345678", "qty": "12345.12345678", "quote": "1234578036.78932003"}
SHIB = {"price": "0.00001234", "qty": "9876543210.12345678", "quote": "121876.54321"}


def _spot_rows() -> list[dict]:
    rows = []
    for i, (sym, v) in enumerate((("BTCUSDT", BTC), ("SHIBUSDT", SHIB))):
        rows.append(
            {
                "symbol": sym,
                "orderId": i + 1,
                "orderListId": -1,
                "clientOrderId": "c",
                "price": v["price"],
                "origQty": v["qty"],
                "executedQty": v["qty"],
                "cummulativeQuoteQty": v["quote"],
                "status": "FILLED",
                "timeInForce": "GTC",
                "type": "LIMIT",
                "side": "BUY",
                "stopPrice": "0.00000000",
                "icebergQty": "0.00000000",
                "time": T0 + i,
                "updateTime": T0 + i,
                "isWorking": True,
                "workingTime": T0 + i,
                "origQuoteOrderQty": "0.00000000",
                "selfTradePreventionMode": "NONE",
            }
        )
    return rows


def _big_futures_table() -> pa.Table:
    """N BTC orders: the same values repeated (cheap to build, exact expected sums)."""
    one = futures_orders.from_api(
        [
            {
                "symbol": "BTCUSDT",
                "orderId": 1,
                "price": BTC["price"],
                "avgPrice": "100000.123456789012",
                "origQty": BTC["qty"],
                "executedQty": BTC["qty"],
                "cumQuote": "1234578036.7893200312",
                "status": "FILLED",
                "time": T0,
                "updateTime": T0 + 1000,
            }
        ],
        account="main",
        market="usdm",
        source="rest_allOrders",
        ingested_at=T0,
    )
    idx = pa.array([0] * N, pa.int32())
    table = one.take(idx)
    return table.set_column(table.schema.get_field_index("order_id"), "order_id", pa.array(range(1, N + 1), pa.int64()))


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    data = tmp_path_factory.mktemp("lake")
    lake.write_partition(
        data,
        "spot_orders",
        "main",
        DAY,
        spot_orders.from_api(_spot_rows(), account="main", source="rest_allOrders", ingested_at=T0),
    )
    lake.write_partition(data, "futures_orders", "main", DAY, _big_futures_table())
    c = duckdb.connect()
    for t in ("spot_orders", "futures_orders"):
        c.execute(
            f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{data.as_posix()}/lake/{t}/*/*/*.parquet', "
            "hive_partitioning=true, union_by_name=true)"
        )
    return c


def test_types_are_decimal(con: duckdb.DuckDBPyConnection) -> None:
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE futures_orders)").fetchall())
    assert types["price"] == "DECIMAL(38,8)" and types["avg_price"] == "DECIMAL(38,12)"
    assert types["cum_quote"] == "DECIMAL(38,10)" and types["update_time"] == "TIMESTAMP WITH TIME ZONE"


def test_spot_products_exact(con: duckdb.DuckDBPyConnection) -> None:
    rows = dict(con.execute("SELECT symbol, price * executed_qty FROM spot_orders").fetchall())
    assert rows["BTCUSDT"] == Decimal(BTC["price"]) * Decimal(BTC["qty"])
    assert rows["SHIBUSDT"] == Decimal(SHIB["price"]) * Decimal(SHIB["qty"])
    total = con.execute("SELECT sum(cummulative_quote_qty), sum(price * executed_qty) FROM spot_orders").fetchone()
    assert total[0] == Decimal(BTC["quote"]) + Decimal(SHIB["quote"])
    assert total[1] == sum(Decimal(v["price"]) * Decimal(v["qty"]) for v in (BTC, SHIB))


def test_futures_sums_over_a_million_rows_exact(con: duckdb.DuckDBPyConnection) -> None:
    got = con.execute(
        "SELECT count(*), sum(price * executed_qty), sum(avg_price * executed_qty), sum(cum_quote), "
        "max(avg_price * executed_qty), sum(executed_qty) FROM futures_orders"
    ).fetchone()
    price, avg, qty = Decimal(BTC["price"]), Decimal("100000.123456789012"), Decimal(BTC["qty"])
    assert got[0] == N
    with localcontext() as ctx:
        ctx.prec = 80  # Python's default 28 digits would round the expected values themselves
        _check_sums(got, price, avg, qty)


def _check_sums(got: tuple, price: Decimal, avg: Decimal, qty: Decimal) -> None:
    assert got[1] == price * qty * N
    assert got[2] == avg * qty * N
    assert got[3] == Decimal("1234578036.7893200312") * N
    assert got[4] == avg * qty
    assert got[5] == qty * N

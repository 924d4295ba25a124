"""The catalog's trades, income, fees_daily and pnl_daily views, and the orders-to-trades mismatch view, over
hand-made partitions: sums never mix assets, every market is in one view, a filled order's trades add up."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb

from pipeline.warehouse.catalog import build_catalog
from pipeline.warehouse.trade_views import order_trade_mismatches
from tests.support.warehouse import futures_row, ms, spot_row, spot_trade_row, write

D1 = date(2024, 1, 1)


def _futures_trade(trade_id: int, order_id: int, qty: str, pnl: str, fee: str, asset: str = "USDT") -> dict:
    return {
        "account": "main",
        "market": "usdm",
        "symbol": "BTCUSDT",
        "trade_id": trade_id,
        "order_id": order_id,
        "side": "SELL",
        "position_side": "BOTH",
        "price": "100",
        "qty": qty,
        "quote_qty": str(Decimal(qty) * 100),
        "realized_pnl": pnl,
        "pnl_asset": "USDT",
        "commission": fee,
        "commission_asset": asset,
        "is_buyer": False,
        "is_maker": True,
        "base_asset": "BTC",
        "quote_asset": "USDT",
        "time": ms("2024-01-01T11:00:00"),
        "source": "rest_userTrades",
        "ingested_at": ms("2024-01-02T00:00:00"),
    }


def _income(kind: str, tran: int, amount: str, asset: str = "USDT", symbol: str = "BTCUSDT") -> dict:
    return {
        "account": "main",
        "market": "usdm",
        "income_type": kind,
        "tran_id": tran,
        "asset": asset,
        "symbol": symbol,
        "income": amount,
        "info": kind,
        "trade_id": "",
        "time": ms("2024-01-01T12:00:00"),
        "source": "rest_income",
        "ingested_at": ms("2024-01-02T00:00:00"),
    }


def _lake(tmp_path: Path) -> Path:
    at = "2024-01-01T10:00:00"
    later = spot_row(3, qty="1", time=at, update="2024-01-02T10:00:00")  # fills on a day trades do not cover yet
    write(tmp_path, "spot_orders", "main", D1, [spot_row(1, qty="3", time=at), spot_row(2, qty="1", time=at)])
    write(tmp_path, "spot_orders", "main", date(2024, 1, 2), [later])
    trades = [
        {**spot_trade_row(10, order_id=1, time=at), "qty": "1", "quote_qty": "100", "price": "100"},
        {**spot_trade_row(11, order_id=1, time=at), "qty": "2", "quote_qty": "200", "price": "100"},
        {**spot_trade_row(12, order_id=2, time=at), "qty": "0.5", "quote_qty": "50", "price": "100"},
    ]
    trades[1]["commission_asset"] = "BTC"
    write(tmp_path, "spot_trades", "main", D1, trades)
    write(tmp_path, "futures_orders", "main", D1, [futures_row(7, qty="2", time=at)])
    write(
        tmp_path,
        "futures_trades",
        "main",
        D1,
        [_futures_trade(70, 7, "1.5", "3.25", "0.1"), _futures_trade(71, 7, "0.5", "-1", "0.001", "BNB")],
    )
    income = [
        _income("REALIZED_PNL", 70, "3.25"),
        _income("COMMISSION", 70, "-0.1"),  # the same tranId as its realized PnL: another type
        _income("REALIZED_PNL", 71, "-1"),
        _income("COMMISSION", 71, "-0.001", "BNB"),
        _income("FUNDING_FEE", 5, "-0.5"),
        _income("TRANSFER", 9, "1000", symbol=""),
    ]
    write(tmp_path, "futures_income", "main", D1, income)
    return tmp_path


def _q(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_views_union_markets_and_never_sum_two_assets(tmp_path: Path) -> None:
    built = build_catalog(_lake(tmp_path))
    assert built.views["trades"] == 5 and built.views["income"] == 6
    markets = _q(built.path, "SELECT market, count(*) FROM trades GROUP BY ALL ORDER BY ALL")
    assert markets == [("spot", 3), ("usdm", 2)]
    fees = _q(built.path, "SELECT market, commission_asset, commission, trades FROM fees_daily ORDER BY ALL")
    assert fees == [
        ("spot", "BNB", Decimal("0.00024690"), 2),
        ("spot", "BTC", Decimal("0.00012345"), 1),
        ("usdm", "BNB", Decimal("0.00100000"), 1),
        ("usdm", "USDT", Decimal("0.10000000"), 1),
    ]
    pnl = _q(
        built.path,
        "SELECT market, symbol, asset, realized_pnl, funding, commission FROM pnl_daily ORDER BY market, asset",
    )
    assert pnl == [
        ("spot", "BTCUSDT", "BNB", 0, 0, Decimal("-0.00024690")),
        ("spot", "BTCUSDT", "BTC", 0, 0, Decimal("-0.00012345")),
        ("usdm", "BTCUSDT", "BNB", 0, 0, Decimal("-0.00100000")),
        ("usdm", "BTCUSDT", "USDT", Decimal("2.25000000"), Decimal("-0.50000000"), Decimal("-0.10000000")),
    ]
    types = dict(_q(built.path, "SELECT name, type FROM (DESCRIBE trades) t(name, type, a, b, c, d)"))
    assert types["qty"] == types["commission"] == types["realized_pnl"] == "DECIMAL(38,8)"


def test_mismatch_view_lists_orders_whose_trades_do_not_add_up(tmp_path: Path) -> None:
    built = build_catalog(_lake(tmp_path))
    rows = _q(built.path, "SELECT market, order_id, executed_qty, trades_qty FROM order_trade_mismatches")
    # order 1 and the futures order agree; order 3's fills reach a day the trades table does not cover
    assert rows == [("spot", 2, Decimal("1.00000000"), Decimal("0.50000000"))]
    assert order_trade_mismatches(built.path) == (1, ["spot main BTCUSDT 2: executed 1.00000000, trades 0.50000000"])


def test_views_show_the_channel_of_old_and_new_source_values(tmp_path: Path) -> None:
    at, later = "2024-01-01T10:00:00", "2024-01-02T10:00:00"
    legacy = _lake(tmp_path)  # the endpoint names older lakes wrote: export_order_csv, rest_userTrades, ...
    newer = {**futures_row(7, qty="2", time=at, update=later, ingested=later), "source": "rest"}
    write(tmp_path, "futures_orders", "main", date(2024, 1, 2), [newer])  # REST's later version of the export's
    write(tmp_path, "pm_um_trades", "main", D1, [{**_futures_trade(80, 8, "1", "0", "0"), "market": "pm_um"}])
    ws = {**spot_trade_row(13, order_id=2, time=later), "source": "ws"}
    write(tmp_path, "spot_trades", "main", date(2024, 1, 2), [ws])
    built = build_catalog(legacy)
    sources = {
        view: sorted({s for (s,) in _q(built.path, f"SELECT DISTINCT source FROM {view}")})
        for view in ("futures_orders", "futures_order_versions", "pm_um_trades", "trades", "income", "spot_trades")
    }
    assert sources == {
        "futures_orders": ["rest"],
        "futures_order_versions": ["export", "rest"],
        "pm_um_trades": ["rest"],
        "trades": ["rest", "ws"],
        "income": ["rest"],
        "spot_trades": ["rest", "ws"],
    }
    # spot orders keep their endpoint names (the open-order snapshots are told apart by them)
    assert _q(built.path, "SELECT DISTINCT source FROM spot_orders") == [("rest_allOrders",)]

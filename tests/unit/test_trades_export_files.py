"""Trade and income export files: every dialect of docs/export-files.md §Trade history binds by header name and
converts exactly; what is not such a file is refused with one message naming the file kind and the column."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from pipeline.exports.parsing import MissingColumn, parse_export
from pipeline.exports.parsing.errors import BadValue
from pipeline.exports.verify import RefusedExport
from pipeline.sandbox.fill_exports import INCOME_DIALECTS, TRADE_DIALECTS, build_fill_csv
from pipeline.trades.export_files import INCOME, TRADES
from pipeline.trades.export_ingest import fill_writer, write_fill_partitions
from pipeline.warehouse.symbols import record_futures_exchange_info
from tests.support.assets import lake_rows

TRADE = {
    "buyer": False,
    "commission": "0.00352911",
    "commissionAsset": "BNB",
    "id": 8389765568816714211,
    "maker": True,
    "orderId": 2593877352,
    "price": "1200.62",
    "qty": "2",
    "quoteQty": "2401.24",
    "realizedPnl": "10.24",
    "side": "SELL",
    "positionSide": "LONG",
    "symbol": "ETHUSDT",
    "time": 1672602793000,  # 2023-01-01 19:53:13 UTC
}
INCOME_ROW = {
    "symbol": "",
    "incomeType": "TRANSFER",
    "income": "-0.80000000",
    "asset": "USDT",
    "info": "TRANSFER",
    "time": 1672531200000,
    "tranId": 123,
    "tradeId": "",
}


def _parse(tmp_path, body: bytes, kind, name: str = "f(UTC+8).csv") -> pa.Table:
    path = tmp_path / name
    path.write_bytes(body)
    return pa.Table.from_batches(list(parse_export(path, market="usdm", account="main", source_name=name, kind=kind)))


def _name(dialect: str) -> str:
    return "f(UTC0).csv" if dialect == "legacy" else "f(UTC+8).csv"  # legacy headers are labelled UTC


@pytest.mark.parametrize("dialect", TRADE_DIALECTS)
def test_every_trade_dialect_reads_the_same_trade(tmp_path, dialect: str) -> None:
    body = build_fill_csv("trade", [TRADE], dialect=dialect, offset_minutes=480, uid=7)
    [row] = _parse(tmp_path, body, TRADES, _name(dialect)).to_pylist()
    assert row["trade_id"] == 8389765568816714211 and row["order_id"] == 2593877352  # beyond 2^53, exact
    assert (row["price"], row["qty"], row["quote_qty"]) == (Decimal("1200.62"), Decimal(2), Decimal("2401.24"))
    assert (row["commission"], row["commission_asset"]) == (Decimal("0.00352911"), "BNB")
    assert (row["realized_pnl"], row["is_buyer"], row["is_maker"]) == (Decimal("10.24"), False, True)
    assert row["time"] == datetime(2023, 1, 1, 19, 53, 13, tzinfo=UTC)
    assert row["source"] == "export" and row["position_side"] == ("LONG" if dialect == "legacy" else None)


@pytest.mark.parametrize("dialect", INCOME_DIALECTS)
def test_every_income_dialect_reads_the_same_record(tmp_path, dialect: str) -> None:
    body = build_fill_csv("income", [INCOME_ROW], dialect=dialect, offset_minutes=480, uid=7)
    [row] = _parse(tmp_path, body, INCOME, _name(dialect)).to_pylist()
    assert (row["income_type"], row["tran_id"], row["asset"], row["symbol"]) == ("TRANSFER", 123, "USDT", "")
    assert row["income"] == Decimal("-0.8") and row["time"] == datetime(2023, 1, 1, tzinfo=UTC)
    assert (row["info"], row["trade_id"]) == (("TRANSFER", "") if dialect == "full" else (None, None))


def test_fee_forms_and_website_income_types(tmp_path) -> None:
    head = "Time,Symbol,Side,Price,Quantity,Amount,Fee,Realized Profit,Buyer,Maker,Trade ID,Order ID\n"
    lines = [
        "23-01-01 00:00:01,BTCUSDT,BUY,1,1,1,0.5 USDT,0,Y,N,1,9",
        "23-01-01 00:00:02,BTCUSDT,BUY,1,1,1,0.4,0,y,n,2,9",
    ]
    rows = _parse(tmp_path, (head + "\n".join(lines) + "\n").encode(), TRADES).to_pylist()
    assert [(r["commission"], r["commission_asset"], r["is_buyer"]) for r in rows] == [
        (Decimal("0.5"), "USDT", True),
        (Decimal("0.4"), None, True),  # a bare fee: its asset is unknown, never guessed
    ]
    body = b"Time,Type,Amount,Asset,Symbol,Transaction ID\n2023-01-01 08:00:00,Funding Fee,-1,USDT,BTCUSDT,5\n"
    assert _parse(tmp_path, body, INCOME).column("income_type").to_pylist() == ["FUNDING_FEE"]


def test_an_order_file_or_a_wallet_history_is_refused_naming_the_kind(tmp_path) -> None:
    wallet = b"User ID,Time,Account,Operation,Coin,Change,Remark\n1,2023-08-06 08:34:03,Spot,Deposit,USDT,5,x\n"
    with pytest.raises(MissingColumn, match="TRANSACTION \\(income\\) history"):
        _parse(tmp_path, wallet, INCOME)
    orders = b"Uid,Time,Order No,Symbol,Type,Side,Price\n1,2023-01-01 00:00:00,5,BTCUSDT,LIMIT,BUY,1\n"
    with pytest.raises(MissingColumn, match="TRADE-history"):
        _parse(tmp_path, orders, TRADES)
    bad_fee = (
        b"Time,Symbol,Side,Price,Quantity,Amount,Fee,Trade ID,Order ID\n2023-01-01 00:00:00,X,BUY,1,1,1,a b c,1,2\n"
    )
    with pytest.raises(BadValue, match="not a fee"):
        _parse(tmp_path, bad_fee, TRADES)


def test_a_file_missing_a_stored_trade_is_refused_and_writes_nothing(tmp_path) -> None:
    day = date(2023, 1, 1)
    second = {**TRADE, "id": 5, "time": TRADE["time"] + 1000}
    (tmp_path / "a(UTC+8).csv").write_bytes(
        build_fill_csv("trade", [TRADE, second], dialect="current", offset_minutes=480, uid=7)
    )
    common = {"kind": "trade", "data_dir": tmp_path, "table": "futures_trades", "market": "usdm", "account": "main"}
    first = write_fill_partitions(tmp_path / "a(UTC+8).csv", download_id="1", days=[day], **common)
    assert first.rows == 2 and first.partitions == {day: 2}
    (tmp_path / "b(UTC+8).csv").write_bytes(
        build_fill_csv("trade", [TRADE], dialect="current", offset_minutes=480, uid=7)
    )
    with pytest.raises(RefusedExport, match="lacks 1 trade record"):
        write_fill_partitions(tmp_path / "b(UTC+8).csv", download_id="2", days=[day], **common)
    assert [r["download_id"] for r in lake_rows(tmp_path, "futures_trades", drop=())] == ["1", "1"]


def test_a_reingest_without_a_client_takes_the_recorded_assets(tmp_path) -> None:
    day = date(2023, 1, 1)
    (tmp_path / "a(UTC+8).csv").write_bytes(
        build_fill_csv("trade", [TRADE], dialect="current", offset_minutes=480, uid=7)
    )
    info = {"symbols": [{"symbol": "ETHUSDT", "baseAsset": "ETH", "quoteAsset": "USDT", "marginAsset": "USDT"}]}
    record_futures_exchange_info(tmp_path, info, 0)
    write = fill_writer("trade", None, tmp_path, 0)  # `orderlake exports reingest` has no client
    write(
        tmp_path / "a(UTC+8).csv",
        data_dir=tmp_path,
        table="futures_trades",
        market="usdm",
        account="main",
        download_id="1",
        days=[day],
    )
    [row] = lake_rows(tmp_path, "futures_trades", drop=())
    assert (row["base_asset"], row["quote_asset"], row["pnl_asset"]) == ("ETH", "USDT", "USDT")

"""The streaming parse end to end: a sandbox-style file, bad rows, quoted line breaks, the sandbox contract."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.exports.parsing import BadRow, count_data_lines
from pipeline.sandbox import export_dialects
from pipeline.storage.schemas import futures_orders
from tests.support.export_files import BIG_ID, NAME8, csv_bytes, ms, order, parse_all, write_zip
from tests.support.exports import FROM_EXPORT


def test_sandbox_style_zip_utc_plus_8(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "777.zip", {NAME8: csv_bytes([order(), order(2, update="2024-03-06 07:59:59")])})
    table, stats = parse_all(path)
    assert table.schema == futures_orders.SCHEMA
    r = table.to_pylist()
    assert r[0]["order_id"] == BIG_ID  # exact beyond 2^53
    assert r[0]["time"].timestamp() * 1000 == ms("2024-03-05 00:00:01")  # local UTC+8 -> UTC
    assert r[0]["price"] == Decimal("66000.1") and r[0]["avg_price"] == Decimal("66000.1000012")
    assert r[0]["cum_quote"] == Decimal("8118.0123") and r[0]["uid"] == 123456789
    assert r[0]["utc_offset_minutes"] == 480 and r[0]["source"] == "export"
    assert r[0]["download_id"] == "777" and r[0]["market"] == "usdm" and r[0]["extra"] is None
    assert r[0]["activate_price"] is None and r[0]["reduce_only"] is None
    assert stats.rows == stats.data_lines == 2 and stats.warnings == [] and stats.container == "zip"
    assert count_data_lines(path) == 2


def test_bad_row_field_count(tmp_path: Path) -> None:
    p = tmp_path / NAME8
    p.write_bytes(csv_bytes([order()]) + b"1,2,3\r\n")
    with pytest.raises(BadRow, match="3 fields"):
        parse_all(p)


def test_quoted_line_break_in_a_field(tmp_path: Path) -> None:
    p = tmp_path / NAME8
    p.write_bytes(csv_bytes([order(1, **{"Client Order Id": "two\r\nlines"}), order(2)]))
    table, stats = parse_all(p)
    assert table["client_order_id"].to_pylist() == ["two\r\nlines", "web_abc"]
    assert stats.rows == 2


def test_matches_api_rows_through_sandbox_export_writer(tmp_path: Path) -> None:
    """Contract with the sandbox: the export of API rows parses back to the same values as the API rows."""

    t = ms("2024-03-05 23:30:05")
    api_rows = [
        {
            "avgPrice": "0.0123456",
            "clientOrderId": "abc",
            "cumQuote": "12.3456000",
            "executedQty": "1000",
            "orderId": BIG_ID,
            "origQty": "1000",
            "origType": "LIMIT",
            "price": "0.0123456",
            "reduceOnly": False,
            "side": "SELL",
            "positionSide": "BOTH",
            "status": "FILLED",
            "stopPrice": "0",
            "closePosition": False,
            "symbol": "1000PEPEUSDT",
            "time": t,
            "timeInForce": "GTC",
            "type": "LIMIT",
            "updateTime": t + 3_600_000,
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE",
            "goodTillDate": 0,
        },
        {
            "avgPrice": "0.00000",
            "clientOrderId": "t",
            "cumQuote": "0",
            "executedQty": "0",
            "orderId": 7,
            "origQty": "0.010",
            "origType": "TRAILING_STOP_MARKET",
            "price": "0",
            "reduceOnly": True,
            "side": "BUY",
            "positionSide": "LONG",
            "status": "CANCELED",
            "stopPrice": "0",
            "closePosition": False,
            "symbol": "BTCUSDT",
            "time": t,
            "timeInForce": "GTC",
            "type": "TRAILING_STOP_MARKET",
            "activatePrice": "70000.1",
            "priceRate": "0.3",
            "updateTime": t + 1000,
            "workingType": "MARK_PRICE",
            "priceProtect": False,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE",
            "goodTillDate": 0,
        },
    ]
    name, blob = export_dialects.build_export(
        api_rows, dialect="api", uid=42, offset_minutes=330, created_ms=t, suffix="abcd1234"
    )
    path = tmp_path / name
    path.write_bytes(blob)
    parsed = parse_all(path)[0].to_pylist()
    expected = futures_orders.from_api(api_rows, account="main", market="usdm", source="x", ingested_at=0).to_pylist()
    for got, want in zip(parsed, expected, strict=True):
        assert {k: got[k] for k in FROM_EXPORT} == {k: want[k] for k in FROM_EXPORT}
        assert got["utc_offset_minutes"] == 330 and got["uid"] == 42

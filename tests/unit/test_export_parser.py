"""Export file parser: containers, encodings, header binding, time zones, exactness, errors, daily partitions."""

from __future__ import annotations

import gzip
import json
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.exports import parsing as parser
from pipeline.exports.ingest import write_export_partitions
from pipeline.exports.parsing import (
    BadRow,
    BadValue,
    MissingColumn,
    TruncatedFile,
    UnknownTimezone,
    ZipBombRefused,
    count_data_lines,
)
from pipeline.storage import lake
from pipeline.storage.schemas import futures_orders
from tests.support.export_files import BIG_ID, HEADER, NAME8, csv_bytes, ms, order, parse_all, write_zip
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
    assert r[0]["utc_offset_minutes"] == 480 and r[0]["source"] == "export_order_csv"
    assert r[0]["download_id"] == "777" and r[0]["market"] == "usdm" and r[0]["extra"] is None
    assert r[0]["activate_price"] is None and r[0]["reduce_only"] is None
    assert stats.rows == stats.data_lines == 2 and stats.warnings == [] and stats.container == "zip"
    assert count_data_lines(path) == 2


def test_reordered_columns_quotes_unknown_column_and_utc_header(tmp_path: Path) -> None:
    header = [
        "Order ID",
        "Update Time(UTC)",
        "Symbol",
        "Status",
        "Type",
        "Side",
        "Executed Amount",
        "Amount",
        "Price",
        "Average Price",
        "Executed Quote Amount",
        "Time(UTC)",
        "Client Order Id",
        "Fee Tier",
    ]
    rows = [
        order(
            5,
            **{
                "Order ID": "5",
                "Update Time(UTC)": "2024-03-05 10:00:00",
                "Time(UTC)": "2024-03-05 09:00:00",
                "Client Order Id": 'x,"quoted"',
                "Fee Tier": 'VIP "1"\\n',
                "Price": "1,234.5",
            },
        )
    ]
    path = tmp_path / "no-offset-in-name.csv"
    path.write_bytes(csv_bytes(rows, header, quote_all=True))
    table, stats = parse_all(path)
    r = table.to_pylist()[0]
    assert r["order_id"] == 5 and r["price"] == Decimal("1234.5")  # thousands separator stripped
    assert r["client_order_id"] == 'x,"quoted"'
    assert r["update_time"].timestamp() * 1000 == ms("2024-03-05 10:00:00")  # (UTC) header = offset 0
    assert r["utc_offset_minutes"] == 0
    assert json.loads(r["extra"]) == {"Fee Tier": 'VIP "1"\\n'}
    assert any("Fee Tier" in w and "extra" in w for w in stats.warnings)
    assert r["position_side"] is None and r["time_in_force"] is None  # optional columns absent -> NULL


def test_double_minus_offset_explicit_override_and_unknown_offset(tmp_path: Path) -> None:
    data = csv_bytes([order(time="2024-03-04 18:00:01", update="2024-03-04 18:00:02")], bom=False, crlf=False)
    path = write_zip(tmp_path / "a.zip", {"Binance-Futures-Order-History-202403051200(UTC--6).csv": data})
    r = parse_all(path)[0].to_pylist()[0]
    assert r["time"].timestamp() * 1000 == ms("2024-03-05 00:00:01") and r["utc_offset_minutes"] == -360
    table, stats = parse_all(path, utc_offset_minutes=0)
    assert table["utc_offset_minutes"][0].as_py() == 0 and any("using 0" in w for w in stats.warnings)
    plain = tmp_path / "export.csv"
    plain.write_bytes(data)
    with pytest.raises(UnknownTimezone, match="ORDERLAKE_EXPORT_UTC_OFFSET_MINUTES"):
        parse_all(plain)
    # the configured offset is used only where the file says nothing
    assert parse_all(plain, default_utc_offset_minutes=-360)[0]["time"][0].value == ms("2024-03-05 00:00:01")
    assert parse_all(path, default_utc_offset_minutes=60)[0]["utc_offset_minutes"][0].as_py() == -360
    zero = tmp_path / "Binance-Futures-Order-History-202403051200(UTC0).csv"
    zero.write_bytes(data)
    assert parse_all(zero)[0]["utc_offset_minutes"][0].as_py() == 0


def test_empty_export_sentinel_writes_empty_partitions(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "e.zip", {NAME8: csv_bytes([], sentinel=True)})
    table, stats = parse_all(path)
    assert table.num_rows == 0 and stats.sentinels == 1 and stats.data_lines == 0
    assert count_data_lines(path) == 0
    days = [date(2024, 3, 5), date(2024, 3, 6)]
    res = write_export_partitions(
        path,
        data_dir=tmp_path / "data",
        table="futures_orders",
        market="usdm",
        account="main",
        download_id="777",
        days=days,
    )
    assert res.rows == 0 and res.partitions == {d: 0 for d in days}
    assert lake.list_partitions(tmp_path / "data", "futures_orders", "main") == days


def test_gzip_with_name_in_header_and_plain_csv(tmp_path: Path) -> None:
    data = csv_bytes([order()])
    gz = tmp_path / "777.gz"
    with open(gz, "wb") as fh, gzip.GzipFile(filename=NAME8, mode="wb", fileobj=fh) as g:
        g.write(data)
    table, stats = parse_all(gz)
    assert stats.container == "gzip" and table["utc_offset_minutes"][0].as_py() == 480
    plain = tmp_path / NAME8
    plain.write_bytes(data)
    t2, s2 = parse_all(plain)
    assert s2.container == "csv" and t2.drop_columns(["ingested_at"]).equals(table.drop_columns(["ingested_at"]))


def test_yy_dates_and_impossible_dates(tmp_path: Path) -> None:
    p = tmp_path / NAME8
    p.write_bytes(csv_bytes([order(time="24-03-05 08:00:01", update="24-03-05 08:00:02")]))
    assert parse_all(p)[0]["time"][0].value == ms("2024-03-05 00:00:01")
    p.write_bytes(csv_bytes([order(), order(3, update="2024-02-30 08:00:00")]))
    with pytest.raises(BadValue) as exc:
        parse_all(p)
    assert exc.value.line == 3 and exc.value.column == "Update Time" and NAME8 in str(exc.value)


def test_bad_decimal_names_line_column_value(tmp_path: Path) -> None:
    p = tmp_path / NAME8
    p.write_bytes(csv_bytes([order(), order(2), order(3, **{"Executed Amount": "0.1234567891"})]))
    with pytest.raises(BadValue) as exc:
        parse_all(p)
    assert (exc.value.line, exc.value.column, exc.value.value) == (4, "Executed Amount", "0.1234567891")
    assert "refused rather than rounded" in str(exc.value)


def test_missing_required_column(tmp_path: Path) -> None:
    header = [h for h in HEADER if h != "Status"]
    p = write_zip(tmp_path / "m.zip", {NAME8: csv_bytes([order()], header)})
    with pytest.raises(MissingColumn) as exc:
        parse_all(p)
    assert exc.value.column == "status" and "m.zip" in str(exc.value) and "'Status'" in str(exc.value)


def test_bad_row_field_count(tmp_path: Path) -> None:
    p = tmp_path / NAME8
    p.write_bytes(csv_bytes([order()]) + b"1,2,3\r\n")
    with pytest.raises(BadRow, match="3 fields"):
        parse_all(p)


def test_truncated_zip_and_gzip(tmp_path: Path) -> None:
    big = csv_bytes([order(i, update=f"2024-03-05 08:{i % 60:02d}:00") for i in range(3000)])
    z = write_zip(tmp_path / "t.zip", {NAME8: big})
    cut = tmp_path / "cut.zip"
    cut.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    with pytest.raises(TruncatedFile, match="download it again"):
        parse_all(cut)
    gz = tmp_path / "t.gz"
    gz.write_bytes(gzip.compress(big)[:-2000])
    with pytest.raises(TruncatedFile):
        parse_all(gz, utc_offset_minutes=0)
    # damaged bytes inside a complete ZIP: CRC / inflate error, not garbage rows
    raw = bytearray(z.read_bytes())
    raw[200:260] = b"\x00" * 60
    bad = tmp_path / "crc.zip"
    bad.write_bytes(bytes(raw))
    with pytest.raises(TruncatedFile):
        parse_all(bad)


def _zeros_zip(path: Path, size: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open(NAME8, "w") as m:
        chunk = b"\0" * (1 << 20)
        for _ in range(size >> 20):
            m.write(chunk)
    return path


def test_zip_bomb_refused_before_extraction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _zeros_zip(tmp_path / "bomb.zip", 64 << 20)
    assert bomb.stat().st_size < 200_000
    opened: list[str] = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, *a, **k: opened.append("x") or real_open(self, *a, **k))
    with pytest.raises(ZipBombRefused, match="before extracting"):
        parse_all(bomb, max_uncompressed_bytes=8 << 20)
    with pytest.raises(ZipBombRefused, match="more than 200x"):  # default size limit, ratio guard
        parse_all(bomb)
    assert opened == []  # nothing was decompressed
    monkeypatch.undo()
    gz = tmp_path / "bomb.gz"
    line = csv_bytes([order()]).split(b"\r\n", 1)[1]
    gz.write_bytes(gzip.compress(csv_bytes([order()]) + line * 100_000))  # ~27 MB of valid rows
    with pytest.raises(ZipBombRefused, match="limit"):  # gzip has no trustworthy size: counted while reading
        parse_all(gz, max_uncompressed_bytes=4 << 20, utc_offset_minutes=0)


def test_multi_part_zip_read_in_order(tmp_path: Path) -> None:
    base = "Binance-Futures-Order-History-202403051200(UTC+8)"
    p = write_zip(
        tmp_path / "parts.zip",
        {
            f"{base}-part2-of2.csv": csv_bytes([order(2)]),
            f"{base}-part1-of2.csv": csv_bytes([order(1)]),
        },
    )
    table, stats = parse_all(p)
    assert table["order_id"].to_pylist() == [1, 2] and stats.data_lines == 2
    assert count_data_lines(p) == 2
    broken = write_zip(
        tmp_path / "broken.zip",
        {f"{base}-part1-of3.csv": csv_bytes([order(1)]), f"{base}-part3-of3.csv": csv_bytes([order(3)])},
    )
    with pytest.raises(parser.UnsupportedFile, match="incomplete"):
        parse_all(broken)


def test_daily_split_dedupe_and_days(tmp_path: Path) -> None:
    rows = [
        order(1, update="2024-03-05 07:59:59"),  # 2024-03-04 23:59:59 UTC
        order(2, update="2024-03-05 08:00:00"),  # 2024-03-05 00:00:00 UTC
        order(3, update="2024-03-06 07:59:59"),  # 2024-03-05 23:59:59 UTC
        order(4, update="2024-03-07 12:00:00", Status="NEW"),  # 2024-03-07, older version of 4
        order(4, update="2024-03-08 09:00:00", Status="FILLED"),  # 2024-03-08 01:00 UTC, newest version
        order(9, update="2024-03-20 09:00:00"),  # outside the requested days
    ]
    path = write_zip(tmp_path / "d.zip", {NAME8: csv_bytes(rows)})
    data = tmp_path / "data"
    days = [date(2024, 3, d) for d in range(4, 9)]
    res = write_export_partitions(
        path, data_dir=data, table="futures_orders", market="usdm", account="main", download_id="777", days=days
    )
    assert res.partitions == {
        date(2024, 3, 4): 1,
        date(2024, 3, 5): 2,
        date(2024, 3, 6): 0,
        date(2024, 3, 7): 0,
        date(2024, 3, 8): 1,
    }
    assert res.data_lines == 6 and res.rows == 4
    assert res.duplicates_dropped == 1 and res.outside_days_dropped == 1
    assert any("outside" in w for w in res.warnings) and any("duplicate" in w for w in res.warnings)
    got = lake.read_partition(data, "futures_orders", "main", date(2024, 3, 8)).to_pylist()
    assert [(r["order_id"], r["status"]) for r in got] == [(4, "FILLED")]
    assert lake.read_partition(data, "futures_orders", "main", date(2024, 3, 5))["order_id"].to_pylist() == [2, 3]
    assert not any((data / "tmp").iterdir())  # staging cleaned up
    # idempotent re-ingest: same partitions, one file each
    again = write_export_partitions(
        path, data_dir=data, table="futures_orders", market="usdm", account="main", download_id="777", days=days
    )
    assert again.partitions == res.partitions
    assert len(list((data / "lake").rglob("*.parquet"))) == 5


def test_parse_failure_leaves_lake_untouched(tmp_path: Path) -> None:
    data = tmp_path / "data"
    good = write_zip(tmp_path / "g.zip", {NAME8: csv_bytes([order(1)])})
    write_export_partitions(good, data_dir=data, table="pm_um_orders", market="pm_um", account="main", download_id="1")
    part = lake.partition_path(data, "pm_um_orders", "main", date(2024, 3, 5))
    before = part.read_bytes()
    bad = write_zip(tmp_path / "b.zip", {NAME8: csv_bytes([order(2), order(3, Price="abc")])})
    with pytest.raises(BadValue):
        write_export_partitions(
            bad, data_dir=data, table="pm_um_orders", market="pm_um", account="main", download_id="2"
        )
    assert part.read_bytes() == before
    assert not any((data / "tmp").iterdir())
    with pytest.raises(ValueError, match="belongs to table"):
        write_export_partitions(
            good, data_dir=data, table="futures_orders", market="pm_um", account="main", download_id="1"
        )


def test_quoted_line_break_in_a_field(tmp_path: Path) -> None:
    p = tmp_path / NAME8
    p.write_bytes(csv_bytes([order(1, **{"Client Order Id": "two\r\nlines"}), order(2)]))
    table, stats = parse_all(p)
    assert table["client_order_id"].to_pylist() == ["two\r\nlines", "web_abc"]
    assert stats.rows == 2


def test_matches_api_rows_through_sandbox_export_writer(tmp_path: Path) -> None:
    """Contract with the sandbox: the export of API rows parses back to the same values as the API rows."""
    import pipeline.sandbox.exportfiles as exportfiles

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
    name, blob = exportfiles.build_zip(api_rows, uid=42, offset_minutes=330, created_ms=t)
    path = tmp_path / name
    path.write_bytes(blob)
    parsed = parse_all(path)[0].to_pylist()
    expected = futures_orders.from_api(api_rows, account="main", market="usdm", source="x", ingested_at=0).to_pylist()
    for got, want in zip(parsed, expected, strict=True):
        assert {k: got[k] for k in FROM_EXPORT} == {k: want[k] for k in FROM_EXPORT}
        assert got["utc_offset_minutes"] == 330 and got["uid"] == 42


# binance-api.md §6.2, order history: the core header of two fixtures, the fuller latheiere variant (Time(UTC)
# labelled, Update Time not, Order No last) and the sandbox's (= the fuller one with Order No third, no label).
CORE_HEADER = (
    "Uid,Time,Order No,Symbol,Type,Side,Price,Average Price,Amount,Executed Amount,Executed Quote Amount,"
    "Stop Price,Status,Update Time"
)
FULL_HEADER = (
    "Uid,Time(UTC),Symbol,Type,Side,Position Side,Price,Average Price,Amount,Executed Amount,Executed Quote "
    "Amount,Stop Price,Status,Client Order Id,Time In Force,Activate Price,Price Rate,Update Time,Order No"
)


@pytest.mark.parametrize(
    ("header", "name", "offset"),
    [
        (CORE_HEADER, "Binance-Futures-Order-History-202403051200(UTC+3)_ab12.csv", 180),
        (FULL_HEADER, "export.csv", 0),
        (",".join(HEADER), NAME8, 480),
    ],
    ids=["core", "full-time-utc", "sandbox"],
)
def test_every_order_header_variant_binds_by_name(tmp_path: Path, header: str, name: str, offset: int) -> None:
    cols = header.split(",")
    local_time = "2024-03-05 08:00:01"
    row = order(BIG_ID, time=local_time, update="2024-03-05 09:30:00")
    row["Time(UTC)"] = local_time
    path = tmp_path / name
    path.write_bytes(csv_bytes([row], cols))
    table, stats = parse_all(path)
    r = table.to_pylist()[0]
    assert (r["order_id"], r["symbol"], r["status"], r["type"], r["side"]) == (
        BIG_ID,
        "BTCUSDT",
        "FILLED",
        "LIMIT",
        "BUY",
    )
    assert (r["price"], r["orig_qty"], r["cum_quote"]) == (Decimal("66000.1"), Decimal("0.123"), Decimal("8118.0123"))
    assert r["time"].timestamp() * 1000 == ms(local_time) - offset * 60_000
    assert r["update_time"].timestamp() * 1000 == ms("2024-03-05 09:30:00") - offset * 60_000
    assert r["utc_offset_minutes"] == offset and r["extra"] is None and stats.warnings == []


def _rest(order_id: int, utc: str, *, symbol: str = "BTCUSDT", extra_ms: int = 0) -> dict[str, object]:
    """A /fapi/v1/allOrders object (only the keys inference reads, plus noise)."""
    return {
        "symbol": symbol,
        "orderId": order_id,
        "time": ms(utc) + extra_ms,
        "updateTime": ms(utc) + 99_000,
        "status": "FILLED",
    }


def test_utc_offset_inferred_from_rest_orders(tmp_path: Path) -> None:
    rows = [order(1, time="2024-03-05 13:30:01"), order(2, time="2024-03-05 14:00:00"), order(3)]
    path = tmp_path / "no-label.csv"
    path.write_bytes(csv_bytes(rows))
    # REST times carry milliseconds the file drops; order 2's updateTime changed since (it is not used)
    sample = [_rest(1, "2024-03-05 08:00:01", extra_ms=999), _rest(2, "2024-03-05 08:30:00"), _rest(77, "2024-01-01")]
    found = parser.infer_utc_offset(path, sample)
    assert found == parser.OffsetEvidence(offset_minutes=330, matched=2)
    assert parser.infer_utc_offset(path, [_rest(77, "2024-01-01")]) is None
    assert parser.infer_utc_offset(path, [_rest(1, "2024-03-05 08:00:01", symbol="ETHUSDT")]) is None
    assert parser.infer_utc_offset(path, []) is None
    r = parse_all(path, utc_offset_minutes=found.offset_minutes)[0].to_pylist()[0]
    assert r["time"].timestamp() * 1000 == ms("2024-03-05 08:00:01") and r["utc_offset_minutes"] == 330


def test_utc_offset_inference_refuses_disagreement(tmp_path: Path) -> None:
    path = write_zip(
        tmp_path / "x.zip",
        {NAME8: csv_bytes([order(1, time="2024-03-05 08:00:00"), order(2, time="2024-03-05 09:00:00")])},
    )
    with pytest.raises(UnknownTimezone, match="different or impossible"):
        parser.infer_utc_offset(path, [_rest(1, "2024-03-05 00:00:00"), _rest(2, "2024-03-05 00:00:00")])
    with pytest.raises(UnknownTimezone):  # 7 min 30 s is no time zone
        parser.infer_utc_offset(path, [_rest(1, "2024-03-05 07:52:30")])
    assert parser.infer_utc_offset(path, [_rest(1, "2024-03-05 00:00:00")]).offset_minutes == 480

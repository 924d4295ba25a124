"""Every dialect of the public record (docs/export-files.md): localised headers, website values, asset suffixes,
millisecond times, the three empty-export forms, one offset per file, and what is refused."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.exports.ingest import write_export_partitions
from pipeline.exports.parsing import BadValue, MissingColumn, TruncatedFile, UnknownTimezone, UnsupportedFile
from pipeline.exports.verify import RefusedExport
from pipeline.storage import lake
from tests.support.export_files import HEADER, NAME8, csv_bytes, ms, order, parse_all, write_zip

ZH = {
    "Uid": "用户ID",
    "Time": "时间",
    "Order No": "订单编号",
    "Symbol": "代币名称/币种名称/币对",
    "Type": "类型",
    "Side": "方向",
    "Price": "价格",
    "Average Price": "平均价格",
    "Amount": "金额",
    "Executed Amount": "执行金额",
    "Executed Quote Amount": "已执行报价金额",
    "Stop Price": "止损价格",
    "Status": "状态",
    "Update Time": "更新时间",
}


def _ingest(path: Path, data: Path, days: list[date], **kw: object):  # type: ignore[no-untyped-def]
    return write_export_partitions(
        path, data_dir=data, table="futures_orders", market="usdm", account="main", download_id="5", days=days, **kw
    )


def test_simplified_chinese_header_binds_every_required_column(tmp_path: Path) -> None:
    header = [ZH[h] for h in HEADER if h in ZH]
    rows = [{ZH[k]: v for k, v in order(1).items() if k in ZH}]
    path = write_zip(tmp_path / "zh.zip", {"Binance-合约订单历史记录-202403051200(UTC+8).csv": csv_bytes(rows, header)})
    r = parse_all(path)[0].to_pylist()[0]
    assert r["order_id"] == 1 and r["symbol"] == "BTCUSDT" and r["status"] == "FILLED"
    assert r["time"].timestamp() * 1000 == ms("2024-03-05 00:00:01") and r["utc_offset_minutes"] == 480


def test_website_values_become_api_enums_and_unknown_ones_fail(tmp_path: Path) -> None:
    header = [*HEADER]
    rows = [
        order(1, Status="Filled", Side="Buy", Type="Limit", **{"Position Side": "Long"}),
        order(2, Status="Partially Filled", Side="Sell", Type="Stop Market", **{"Position Side": "Short"}),
        order(3, Status="Cancelled", Type="Take Profit Limit"),
        order(4, Status="EXPIRED_IN_MATCH", Type="TRAILING_STOP_MARKET"),  # API spellings pass as they are
    ]
    path = write_zip(tmp_path / "v.zip", {NAME8: csv_bytes(rows, header)})
    got = [(r["status"], r["side"], r["type"], r["position_side"]) for r in parse_all(path)[0].to_pylist()]
    assert got == [
        ("FILLED", "BUY", "LIMIT", "LONG"),
        ("PARTIALLY_FILLED", "SELL", "STOP_MARKET", "SHORT"),
        ("CANCELED", "BUY", "TAKE_PROFIT", "BOTH"),
        ("EXPIRED_IN_MATCH", "BUY", "TRAILING_STOP_MARKET", "BOTH"),
    ]
    bad = write_zip(tmp_path / "b.zip", {NAME8: csv_bytes([order(1), order(2, Status="Half Done")])})
    with pytest.raises(BadValue, match=r"line 3, column 'Status': 'Half Done'.*not a status value"):
        parse_all(bad)


def test_asset_suffixes_only_with_the_symbols_own_asset(tmp_path: Path) -> None:
    ok = order(1, Amount="0.010BTC", **{"Executed Amount": "0.010 BTC", "Executed Quote Amount": "660.001USDT"})
    path = write_zip(tmp_path / "s.zip", {NAME8: csv_bytes([ok])})
    r = parse_all(path)[0].to_pylist()[0]
    assert (r["orig_qty"], r["executed_qty"], r["cum_quote"]) == (Decimal("0.01"), Decimal("0.01"), Decimal("660.001"))
    for field, value, why in (
        ("Amount", "0.010ETH", "not BTCUSDT's base asset 'BTC'"),
        ("Amount", "0.010USDT", "not BTCUSDT's base asset 'BTC'"),  # a quantity is never counted in the quote
        ("Price", "66000BTC", "not BTCUSDT's quote asset 'USDT'"),
    ):
        bad = write_zip(tmp_path / f"{value}.zip", {NAME8: csv_bytes([order(1, **{field: value})])})
        with pytest.raises(BadValue, match=why):
            parse_all(bad)
    # exchangeInfo's assets win over the name: a symbol no quote-asset split can read
    odd = write_zip(tmp_path / "odd.zip", {NAME8: csv_bytes([order(1, Symbol="XYZPERP", Amount="2XYZ")])})
    with pytest.raises(BadValue, match="assets of symbol 'XYZPERP' are unknown"):
        parse_all(odd)
    r = parse_all(odd, symbol_assets={"XYZPERP": ("XYZ", "USDT")})[0].to_pylist()[0]
    assert r["orig_qty"] == Decimal("2")
    # an asset that starts with digits: '3556061000PEPE' is 355606 of 1000PEPE, not 3556061000 of 'PEPE'
    pepe = order(1, Symbol="1000PEPEUSDT", Amount="3556061000PEPE", **{"Executed Amount": "355606 1000PEPE"})
    r = parse_all(write_zip(tmp_path / "pepe.zip", {NAME8: csv_bytes([pepe])}))[0].to_pylist()[0]
    assert (r["orig_qty"], r["executed_qty"]) == (Decimal("355606"), Decimal("355606"))
    wrong = order(1, Symbol="1000PEPEUSDT", Amount="3556061000PEPEX")
    with pytest.raises(BadValue, match="not 1000PEPEUSDT's base asset '1000PEPE'"):
        parse_all(write_zip(tmp_path / "pepex.zip", {NAME8: csv_bytes([wrong])}))


def test_millisecond_times_local_and_epoch(tmp_path: Path) -> None:
    local = order(1, time="2024-03-05 08:00:01.123", update="2024-03-05 08:00:02.004")
    path = write_zip(tmp_path / "l.zip", {NAME8: csv_bytes([local])})
    r = parse_all(path)[0]
    assert (
        r["time"][0].value == ms("2024-03-05 00:00:01") + 123
        and r["update_time"][0].value == ms("2024-03-05 00:00:02") + 4
    )
    epoch = order(1, time=str(ms("2024-03-05 00:00:01") + 5), update=str(ms("2024-03-05 00:00:02") + 6))
    plain = tmp_path / "no-label.csv"  # epoch times are absolute: no offset is needed
    plain.write_bytes(csv_bytes([epoch]))
    r = parse_all(plain)[0]
    assert (
        r["time"][0].value == ms("2024-03-05 00:00:01") + 5
        and r["update_time"][0].value == ms("2024-03-05 00:00:02") + 6
    )


@pytest.mark.parametrize(
    "body",
    [
        csv_bytes([], sentinel=True),  # the full header, then the sentinel
        csv_bytes([], ["Uid", "Time", "Order No"], sentinel=True),  # the short header, then the sentinel
        b"No data matches the criteria.\r\n",  # the sentinel alone
    ],
    ids=["full-header", "short-header", "sentinel-alone"],
)
def test_three_empty_export_forms_cover_their_days(tmp_path: Path, body: bytes) -> None:
    path = write_zip(tmp_path / "e.zip", {NAME8: body})
    res = _ingest(path, tmp_path / "data", [date(2024, 3, 5)])
    assert res.rows == 0 and lake.list_partitions(tmp_path / "data", "futures_orders", "main") == [date(2024, 3, 5)]


def test_short_header_with_rows_is_a_missing_column(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "s.zip", {NAME8: b"Uid,Time,Order No\r\n1,2024-03-05 08:00:00,5\r\n"})
    with pytest.raises(MissingColumn, match="'symbol'"):
        parse_all(path)


def _stored(data: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in (data / "lake").rglob("*.parquet")} if (data / "lake").exists() else {}


def test_empty_member_header_only_and_short_files_leave_the_lake_as_it_was(tmp_path: Path) -> None:
    data, days = tmp_path / "data", [date(2024, 3, 5)]
    good = write_zip(tmp_path / "g.zip", {NAME8: csv_bytes([order(1), order(2), order(3, Status="NEW")])})
    _ingest(good, data, days)
    before = _stored(data)
    cases = {
        "empty-member": (write_zip(tmp_path / "0.zip", {NAME8: b""}), TruncatedFile, "0 bytes"),
        "header-only": (write_zip(tmp_path / "h.zip", {NAME8: csv_bytes([])}), RefusedExport, "--accept-empty"),
        # cut at a row boundary: order 2 (FILLED, inside the range) is missing; order 3 is still open, so a later
        # state may be outside the range and its absence proves nothing
        "cut": (write_zip(tmp_path / "c.zip", {NAME8: csv_bytes([order(1)])}), RefusedExport, "lacks 1 order"),
    }
    for name, (path, error, message) in cases.items():
        with pytest.raises(error, match=message):
            _ingest(path, data, days)
        assert _stored(data) == before, name
    # accepting it as empty cannot override what the lake proves, but where the lake knows nothing it is accepted
    with pytest.raises(RefusedExport, match="lacks 2 order"):
        _ingest(cases["header-only"][0], data, days, accept_empty=True)
    fresh = tmp_path / "fresh"
    assert _ingest(cases["header-only"][0], fresh, days, accept_empty=True).partitions == {days[0]: 0}


def test_unterminated_plain_csv_needs_a_verified_transfer(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = tmp_path / NAME8
    path.write_bytes(csv_bytes([order(1)]).rstrip(b"\r\n"))
    with pytest.raises(RefusedExport, match="does not end"):
        _ingest(path, data, [date(2024, 3, 5)])
    assert _ingest(path, data, [date(2024, 3, 5)], transfer_verified=True).rows == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (csv_bytes([order(1)]).replace(b",", b";"), "semicolons"),
        (csv_bytes([order(1)]).replace(b",", b"\t"), "tabs"),
        ("\ufeffUid,Time".encode("utf-16"), "UTF-16"),
        ("Uid,时间,Order No\r\n".encode("gbk"), "not UTF-8"),
    ],
    ids=["semicolon", "tab", "utf16", "gbk"],
)
def test_other_separators_and_encodings_are_refused(tmp_path: Path, body: bytes, message: str) -> None:
    path = write_zip(tmp_path / "x.zip", {NAME8: body})
    with pytest.raises(UnsupportedFile, match=message):
        parse_all(path)


def test_one_offset_per_file_and_disagreeing_labels(tmp_path: Path) -> None:
    header = [h if h != "Time" else "Time(UTC)" for h in HEADER]  # a labelled Time next to a bare Update Time
    rows = [order(1, update="2024-03-05 08:00:05", **{"Time(UTC)": "2024-03-05 08:00:00"})]
    same = write_zip(tmp_path / "a.zip", {"Binance-Futures-Order-History-1(UTC0).csv": csv_bytes(rows, header)})
    r = parse_all(same)[0].to_pylist()[0]
    assert (r["update_time"] - r["time"]).total_seconds() == 5  # both columns on the one offset
    clash = write_zip(tmp_path / "b.zip", {NAME8: csv_bytes(rows, header)})
    with pytest.raises(UnknownTimezone, match=r"header 'Time\(UTC\)' says UTC\+0.*UTC\+8.*ORDERLAKE_EXPORT_UTC_OFFSET"):
        parse_all(clash)
    table, stats = parse_all(clash, default_utc_offset_minutes=480)  # the setting settles it
    assert table["utc_offset_minutes"][0].as_py() == 480 and stats.offset_source == "configured"
    table, stats = parse_all(clash, utc_offset_minutes=0)  # and so does a proven offset
    assert table["time"][0].value == ms("2024-03-05 08:00:00") and stats.offset_source == "proven"

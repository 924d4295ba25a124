"""A file whose last row Binance's generator cut short (its ZIP size and CRC those of the cut file) is refused in
every dialect, whether or not whole files end with a line break (unknown: docs/export-files.md), and the lake
stays byte for byte as it was; a whole file without a final line break is accepted when its last field proves it
whole, and only by hand when it cannot (docs/design/exports.md §Refusals)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from pipeline.exports.ingest import write_export_partitions
from pipeline.exports.parsing.binding import bind_header
from pipeline.exports.parsing.last_line import cut_last_row
from pipeline.exports.verify import RefusedExport
from pipeline.sandbox import export_dialects

DAY = date(2024, 3, 5)
BASE_MS = int(datetime(2024, 3, 5, 1, tzinfo=UTC).timestamp() * 1000)


def _order(i: int, status: str = "FILLED") -> dict:
    return {
        "orderId": 8389765568816714211 + i,  # > 2^53; cut by one digit it is still a valid id
        "symbol": "BTCUSDT",
        "type": "LIMIT",
        "side": "BUY",
        "positionSide": "BOTH",
        "price": "66000.1",
        "avgPrice": "66000.1",
        "origQty": "0.123",
        "executedQty": "0.123",
        "cumQuote": "8118.0123",
        "stopPrice": "0",
        "status": status,
        "clientOrderId": f"web_{i}",
        "timeInForce": "GTC",
        "time": BASE_MS + i * 60_000 + 123,
        # seconds ending in 12: cut by one character, ``…:1`` is still a time strptime reads
        "updateTime": BASE_MS + i * 60_000 + 12_456,
    }


ORDERS = [_order(i) for i in range(3)]


def _file(tmp: Path, dialect: str, *, damage: str = "none", final_newline: bool = True) -> Path:
    name, data = export_dialects.build_export(
        ORDERS,
        dialect=dialect,
        offset_minutes=480,
        uid=1,
        created_ms=BASE_MS + 86_400_000,
        suffix="abcd",
        damage=damage,
        final_newline=final_newline,
    )
    path = tmp / f"{dialect}-{damage}-{final_newline}" / name
    path.parent.mkdir()
    path.write_bytes(data)
    return path


def _ingest(path: Path, data: Path, **kw: object):  # type: ignore[no-untyped-def]
    return write_export_partitions(
        path,
        data_dir=data,
        table="futures_orders",
        market="usdm",
        account="main",
        download_id="7",
        days=[DAY],
        transfer_verified=True,  # the ZIP's CRC proves the transfer: only the generator cut the file
        **kw,
    )


def _stored(data: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in (data / "lake").rglob("*") if p.is_file()}


@pytest.mark.parametrize("dialect", export_dialects.DIALECTS)
def test_a_row_cut_short_is_refused_and_a_whole_file_accepted_with_or_without_a_final_line_break(
    tmp_path: Path, dialect: str
) -> None:
    data = tmp_path / "data"
    assert _ingest(_file(tmp_path, dialect), data).rows == 3  # the whole file, ending with a line break
    before = _stored(data)
    cut = _file(tmp_path, dialect, damage="cut_mid_row")
    with pytest.raises(RefusedExport, match="may be cut short"):
        _ingest(cut, data)
    assert _stored(data) == before
    # the lake's check could not tell: an empty lake proves nothing, and the cut row still parses
    with pytest.raises(RefusedExport, match="may be cut short"):
        _ingest(cut, tmp_path / "fresh")
    assert not (tmp_path / "fresh" / "lake").exists()

    unterminated = _file(tmp_path, dialect, final_newline=False)
    if dialect == "legacy":  # `Order No` is the last field: a whole id and a cut one look alike
        with pytest.raises(RefusedExport, match=r"Order No = '8389765568816714213'.*--accept-last-line"):
            _ingest(unterminated, data)
        assert _stored(data) == before
        assert _ingest(unterminated, data, accept_last_line=True).rows == 3
    else:  # `Update Time` is last, and a whole time has the full width of the file's format
        assert _ingest(unterminated, data).rows == 3


def _why(tail: bytes, header: str = "Status,Update Time", formats: dict[str, str] | None = None) -> str | None:
    binding, _ = bind_header(header.split(","), path="f.csv")
    return cut_last_row(tail, binding, formats if formats is not None else {"update_time": "%Y-%m-%d %H:%M:%S"})


def test_the_last_field_counts_as_whole_only_when_no_cut_could_produce_it() -> None:
    head = b"Status,Update Time\r\n"
    assert _why(head + b"FILLED,2024-03-05 08:00:12") is None
    assert "Update Time" in (_why(head + b"FILLED,2024-03-05 08:00:1") or "")
    assert "line break" in (_why(head + b"FILLED,2024-03-05 08:00:12\r") or "")
    assert "1 fields" in (_why(head + b"FILLED") or "")
    ms = {"update_time": "%Y-%m-%d %H:%M:%S.%f"}
    assert _why(head + b"FILLED,2024-03-05 08:00:12.345", formats=ms) is None
    for cut in (b"12.34", b"12.", b"12"):  # a millisecond file's time cut before its 3 digits end
        assert _why(head + b"FILLED,2024-03-05 08:00:" + cut, formats=ms) is not None
    assert _why(head + b"FILLED,1709625612345", formats={"update_time": "epoch-ms"}) is None
    assert _why(head + b"FILLED,170962561234", formats={"update_time": "epoch-ms"}) is not None
    enums = "Update Time,Status"
    assert _why(b"Update Time,Status\n2024-03-05 08:00:12,FILLED", enums) is None
    assert _why(b"Update Time,Status\n2024-03-05 08:00:12,EXPIRED", enums) is not None  # EXPIRED_IN_MATCH cut?
    assert _why(b'Update Time,Status\n2024-03-05 08:00:12,"EXPIRED"', enums) is None  # its closing quote stands
    assert _why(b"Uid,Order No\n1,77", "Uid,Order No") is not None
    assert "longer than" in (_why(b"x" * 64) or "")

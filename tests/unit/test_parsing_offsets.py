"""UTC offsets of the local times: file-name and header labels, explicit and default offsets, inference."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.exports import parsing
from pipeline.exports.parsing import UnknownTimezone
from tests.support.export_files import NAME8, csv_bytes, ms, order, parse_all, write_zip


def test_double_minus_offset_explicit_override_and_unknown_offset(tmp_path: Path) -> None:
    data = csv_bytes([order(time="2024-03-04 18:00:01", update="2024-03-04 18:00:02")], bom=False, crlf=False)
    path = write_zip(tmp_path / "a.zip", {"Binance-Futures-Order-History-202403051200(UTC--6).csv": data})
    r = parse_all(path)[0].to_pylist()[0]
    assert r["time"].timestamp() * 1000 == ms("2024-03-05 00:00:01") and r["utc_offset_minutes"] == -360
    table, stats = parse_all(path, utc_offset_minutes=0)
    assert table["utc_offset_minutes"][0].as_py() == 0 and stats.offset_source == "proven"
    assert "labels differ" in stats.offset_note and "UTC-6" in stats.offset_note
    plain = tmp_path / "export.csv"
    plain.write_bytes(data)
    with pytest.raises(UnknownTimezone, match="ORDERLAKE_EXPORT_UTC_OFFSET_MINUTES"):
        parse_all(plain)
    # the configured offset wins over the file's labels (and says they differ)
    assert parse_all(plain, default_utc_offset_minutes=-360)[0]["time"][0].value == ms("2024-03-05 00:00:01")
    table, stats = parse_all(path, default_utc_offset_minutes=60)
    assert table["utc_offset_minutes"][0].as_py() == 60 and stats.offset_source == "configured"
    zero = tmp_path / "Binance-Futures-Order-History-202403051200(UTC0).csv"
    zero.write_bytes(data)
    assert parse_all(zero)[0]["utc_offset_minutes"][0].as_py() == 0


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
    found = parsing.infer_utc_offset(path, sample)
    assert found == parsing.OffsetEvidence(offset_minutes=330, matched=2)
    assert parsing.infer_utc_offset(path, [_rest(77, "2024-01-01")]) is None
    assert parsing.infer_utc_offset(path, [_rest(1, "2024-03-05 08:00:01", symbol="ETHUSDT")]) is None
    assert parsing.infer_utc_offset(path, []) is None
    r = parse_all(path, utc_offset_minutes=found.offset_minutes)[0].to_pylist()[0]
    assert r["time"].timestamp() * 1000 == ms("2024-03-05 08:00:01") and r["utc_offset_minutes"] == 330


def test_utc_offset_inference_refuses_disagreement(tmp_path: Path) -> None:
    path = write_zip(
        tmp_path / "x.zip",
        {NAME8: csv_bytes([order(1, time="2024-03-05 08:00:00"), order(2, time="2024-03-05 09:00:00")])},
    )
    with pytest.raises(UnknownTimezone, match="different or impossible"):
        parsing.infer_utc_offset(path, [_rest(1, "2024-03-05 00:00:00"), _rest(2, "2024-03-05 00:00:00")])
    with pytest.raises(UnknownTimezone):  # 7 min 30 s is no time zone
        parsing.infer_utc_offset(path, [_rest(1, "2024-03-05 07:52:30")])
    assert parsing.infer_utc_offset(path, [_rest(1, "2024-03-05 00:00:00")]).offset_minutes == 480

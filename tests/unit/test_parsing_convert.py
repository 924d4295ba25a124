"""Value conversion: short-year and impossible dates, decimals that would need rounding."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.exports.parsing import BadValue
from tests.support.export_files import NAME8, csv_bytes, ms, order, parse_all


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

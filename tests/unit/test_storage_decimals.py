"""Exact decimals: never rounded, clear errors naming column and value; vector path == scalar path."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from pipeline.storage.decimals import (
    DecimalOverflow,
    InvalidDecimal,
    decimals_from_python,
    parse_decimal,
    to_decimal_array,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.10000000000", Decimal("0.1")),  # trailing zeros beyond the scale are fine
        ("-0.5", Decimal("-0.5")),
        ("123", Decimal("123")),
        (".5", Decimal("0.5")),
        ("+1.25", Decimal("1.25")),
        ("0.00000001", Decimal("1E-8")),
        ("-0.000000000000", Decimal(0)),
        ("-1.00000000", Decimal(-1)),  # negative cummulativeQuoteQty of old spot orders is kept
        ("9" * 30 + ".12345678", Decimal("9" * 30 + ".12345678")),  # exactly 38 digits
    ],
)
def test_parse_decimal_exact(text: str, expected: Decimal) -> None:
    got = parse_decimal(text, scale=8, column="price")
    assert got == expected
    assert got.as_tuple().exponent == -8  # uniform scale
    arr = to_decimal_array(pa.array([text]), scale=8, column="price")
    assert arr.type == pa.decimal128(38, 8)
    assert arr[0].as_py() == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("1.123456789", DecimalOverflow),  # 9 significant decimals into scale 8: refused, not rounded
        ("0.000000001", DecimalOverflow),
        ("9" * 31, DecimalOverflow),  # 31 integer digits + 8 decimals > 38
        ("1e-8", InvalidDecimal),  # exponent notation hints at a spreadsheet round-trip
        ("1E+5", InvalidDecimal),
        ("", InvalidDecimal),
        (" 1", InvalidDecimal),
        ("1,5", InvalidDecimal),
        ("NaN", InvalidDecimal),
        ("abc", InvalidDecimal),
    ],
)
def test_rejections_name_column_and_value(text: str, error: type[Exception]) -> None:
    with pytest.raises(error) as exc:
        parse_decimal(text, scale=8, column="executed_qty")
    assert "executed_qty" in str(exc.value) and repr(text) in str(exc.value)
    # the vectorised path refuses the same value and names its row
    with pytest.raises(error) as exc2:
        to_decimal_array(pa.array(["1.5", None, text]), scale=8, column="executed_qty")
    assert exc2.value.row == 2 and exc2.value.column == "executed_qty"


def test_larger_scale_accepts_more_digits() -> None:
    assert parse_decimal("1.123456789012", scale=12, column="avg_price") == Decimal("1.123456789012")
    with pytest.raises(DecimalOverflow):
        parse_decimal("1.1234567890123", scale=12, column="avg_price")


def test_vector_path_exact_and_nulls() -> None:
    texts = ["8389765568.81671421", None, "0.00000001", "-4723846.89208129", "100000.12345678"]
    arr = to_decimal_array(pa.array(texts), scale=8, column="x")
    assert arr.to_pylist() == [None if t is None else Decimal(t) for t in texts]


def test_thousands_separators_only_with_strict_pattern() -> None:
    arr = to_decimal_array(pa.array(["1,234,567.89", "12.5"]), scale=8, column="x", allow_thousands=True)
    assert arr.to_pylist() == [Decimal("1234567.89"), Decimal("12.5")]
    with pytest.raises(InvalidDecimal, match="thousands"):
        to_decimal_array(pa.array(["1,5"]), scale=8, column="x", allow_thousands=True)
    with pytest.raises(InvalidDecimal):
        to_decimal_array(pa.array(["1,234.5"]), scale=8, column="x")  # not allowed by default


def test_from_python_refuses_floats() -> None:
    with pytest.raises(InvalidDecimal, match="not exact"):
        decimals_from_python([0.1], scale=8, column="price")
    assert decimals_from_python(["0.1", None, 3, Decimal("2.5")], scale=8, column="p").to_pylist() == [
        Decimal("0.1"),
        None,
        Decimal(3),
        Decimal("2.5"),
    ]

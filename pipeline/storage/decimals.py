"""Exact decimal conversion: Binance decimal text -> ``Decimal`` / Arrow ``decimal128(38, scale)``, never rounding.

:func:`parse_decimal` (one value) and :func:`to_decimal_array` (an Arrow string array) apply the same rules: plain
decimal notation only, and a value with more significant fractional digits than the scale or more than 38 digits
raises a :class:`DecimalError` that names the column and the value. Rules and why:
docs/design/storage.md §Exact decimals.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation, localcontext

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import DataError

PRECISION = 38
_PLAIN = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
# Thousands separators as some statement exports print them: 1,234,567.89 (groups of exactly three digits).
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?$")
_THOUSANDS_PATTERN = r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$"


class DecimalError(DataError, ValueError):
    """A value that cannot be stored exactly in its decimal column. ``row`` is the 0-based row, if known."""

    def __init__(self, message: str, *, column: str, value: object, row: int | None = None) -> None:
        self.column, self.value, self.row = column, value, row
        super().__init__(message)


class InvalidDecimal(DecimalError):
    """Text that is not plain decimal notation."""


class DecimalOverflow(DecimalError):
    """A number with more fractional digits than the column's scale, or too many digits for precision 38."""


def _where(row: int | None) -> str:
    return "" if row is None else f" (row {row})"


def parse_decimal(text: str, *, scale: int, column: str, row: int | None = None) -> Decimal:
    """Parse plain decimal text exactly; the result is quantized to ``scale`` (equal value, uniform exponent).

    Raises :class:`InvalidDecimal` for anything that is not plain decimal text and :class:`DecimalOverflow` when
    the value does not fit ``decimal128(38, scale)`` exactly. Never rounds.
    """
    if not isinstance(text, str) or not _PLAIN.match(text):
        raise InvalidDecimal(
            f"column {column!r}: {text!r}{_where(row)} is not a plain decimal number (expected text like "
            "'123.45'; exponent notation, blanks and separators are refused because they hint at a file that "
            "was edited or converted)",
            column=column,
            value=text,
            row=row,
        )
    value = Decimal(text)
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # NaN/Infinity are excluded by the regex
    if not any(digits):  # zero in any spelling ("0", "-0.000000000000") fits every scale
        return Decimal(0).scaleb(-scale)
    digits_list = list(digits)
    while exponent < 0 and len(digits_list) > 1 and digits_list[-1] == 0:
        digits_list.pop()
        exponent += 1
    fractional = max(0, -exponent)
    integer_digits = max(0, len(digits_list) + exponent)
    if fractional > scale or integer_digits > PRECISION - scale:
        why = (
            f"has {fractional} significant fractional digits but the column keeps {scale}"
            if fractional > scale
            else f"has {integer_digits} integer digits but decimal({PRECISION},{scale}) keeps {PRECISION - scale}"
        )
        raise DecimalOverflow(
            f"column {column!r}: value {text!r}{_where(row)} {why}; it is refused rather than rounded. "
            "If Binance really sends such values, the column's scale must be widened in pipeline/storage/schemas.",
            column=column,
            value=text,
            row=row,
        )
    with localcontext() as ctx:
        ctx.prec = PRECISION + 10
        try:
            return value.quantize(Decimal(1).scaleb(-scale))
        except InvalidOperation as exc:  # pragma: no cover - guarded by the digit checks above
            raise DecimalOverflow(f"column {column!r}: {text!r} does not fit", column=column, value=text) from exc


def decimal_type(scale: int) -> pa.Decimal128Type:
    return pa.decimal128(PRECISION, scale)


def _as_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values


def to_decimal_array(
    values: pa.Array | pa.ChunkedArray,
    *,
    scale: int,
    column: str,
    allow_thousands: bool = False,
) -> pa.Array:
    """Convert a string array to ``decimal128(38, scale)`` exactly; nulls stay null.

    Fast path: Arrow's cast (exact, raises on data loss) plus a check for exponent notation. On failure the slow
    path names the first bad value and its row. ``allow_thousands`` strips ``,`` from values that match a strict
    thousands pattern (``1,234.5``) - never from ``1,5``, which would silently become 15.
    """
    arr = _as_array(values)
    target = decimal_type(scale)
    if pa.types.is_decimal(arr.type) and arr.type == target:
        return arr
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise TypeError(f"column {column!r}: expected a string array, got {arr.type}")
    # One memchr-speed scan of the raw character buffer decides whether the precise (slower) checks are needed:
    # exponent notation, which Arrow's cast would accept and we refuse, or commas (thousands separators).
    suspicious = _buffer_has(arr, (b"e", b"E", b","))
    if suspicious and allow_thousands and pc.any(pc.match_substring(arr, ",")).as_py():
        arr = _strip_thousands(arr, column=column)
    if not suspicious or not pc.any(pc.match_substring(arr, "e", ignore_case=True)).as_py():
        try:
            return pc.cast(arr, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    _raise_first_bad(arr, scale=scale, column=column)
    raise AssertionError("unreachable: slow path found no bad value")  # pragma: no cover


def _buffer_has(arr: pa.Array, needles: tuple[bytes, ...]) -> bool:
    """Whether any needle occurs in the array's character data (a superset for sliced arrays: only ever a
    false positive, which just triggers the precise check)."""
    data = arr.buffers()[2]
    if data is None:
        return False
    raw = data.to_pybytes()  # a copy, but bytes.__contains__ is a memchr scan
    return any(n in raw for n in needles)


def _strip_thousands(arr: pa.Array, *, column: str) -> pa.Array:
    with_comma = pc.match_substring(arr, ",")
    ok = pc.match_substring_regex(arr, _THOUSANDS_PATTERN)
    bad = pc.and_(with_comma, pc.invert(ok))
    if pc.any(bad).as_py():
        row = pc.index(bad, True).as_py()
        raise InvalidDecimal(
            f"column {column!r}: {arr[row].as_py()!r} (row {row}) contains a comma that is not a thousands "
            "separator (a decimal comma would change the value by orders of magnitude; refused)",
            column=column,
            value=arr[row].as_py(),
            row=row,
        )
    return pc.replace_substring(arr, ",", "")


def _raise_first_bad(arr: pa.Array, *, scale: int, column: str) -> None:
    for row, text in enumerate(arr.to_pylist()):
        if text is not None:
            parse_decimal(text, scale=scale, column=column, row=row)


def decimals_from_python(values: list[object], *, scale: int, column: str) -> pa.Array:
    """For API rows: a list of str/None (ints and Decimals tolerated) -> exact decimal array."""
    texts: list[str | None] = []
    for row, v in enumerate(values):
        if v is None or isinstance(v, str):
            texts.append(v)
        elif isinstance(v, bool):
            raise InvalidDecimal(
                f"column {column!r}: boolean {v!r} (row {row}) is not a number", column=column, value=v, row=row
            )
        elif isinstance(v, int | Decimal):
            texts.append(format(v, "f"))
        else:
            # A float here means someone parsed JSON with floats: the exact value is already lost.
            raise InvalidDecimal(
                f"column {column!r}: {type(v).__name__} {v!r} (row {row}) is not exact; pass the decimal text "
                "Binance sent (parse JSON without float conversion)",
                column=column,
                value=v,
                row=row,
            )
    return to_decimal_array(pa.array(texts, type=pa.string()), scale=scale, column=column)

"""Value conversion: one all-string CSV batch -> a batch in the futures_orders schema, exactly or not at all.

Numbers become exact decimals (:mod:`pipeline.storage.decimals`; defensive thousands separators such as
``1,234.5`` are stripped, a decimal comma is refused, an asset suffix is checked and split off by
:mod:`~.values`); ids stay exact int64 (they exceed 2^53); local ``yyyy-MM-dd HH:mm:ss[.fff]`` /
``yy-MM-dd HH:mm:ss`` times become UTC ``timestamp[ms]`` with the file's one offset, and epoch-millisecond times
are taken as they are; website enum spellings become the API's (:mod:`~.values`); unknown columns become the
``extra`` JSON object. A value that does not convert is a :class:`BadValue` naming the line, the column and the
value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.exports.parsing.binding import Binding
from pipeline.exports.parsing.errors import BadValue, UnknownTimezone
from pipeline.exports.parsing.offsets import TIME_COLUMNS
from pipeline.exports.parsing.values import ENUMS, enum_values, strip_asset_suffix
from pipeline.storage.decimals import DecimalError, to_decimal_array
from pipeline.storage.schemas import futures_orders
from pipeline.storage.schemas.columns import EXPORT, extra_from_columns
from pipeline.times import DAY_MS

SOURCE = EXPORT
SCHEMA = futures_orders.SCHEMA
_INT_COLS = {"order_id", "uid"}
_BOOL_COLS = {"reduce_only", "close_position", "price_protect"}
_DEC_COLS = {f.name: f.type.scale for f in SCHEMA if pa.types.is_decimal(f.type)}
_TRUE = {"true", "y", "yes", "1"}
_FALSE = {"false", "n", "no", "0"}
_DAY_S = DAY_MS // 1000


@dataclass
class ConvertContext:
    """What every batch of one member shares: the file (for messages), the constant columns, the offsets."""

    path: Path
    member: str
    market: str
    account: str
    download_id: str | None
    ingested_at_ms: int
    offset: int | None  # the file's one UTC offset of local display times (None: the file must hold none)
    row_offset: int = 0  # data rows before this batch (line = row_offset + index + 2)
    time_format: dict[str, str] = field(default_factory=dict)
    cache: dict = field(default_factory=dict)  # constant columns (see _constant)
    assets: dict[str, tuple[str, str]] = field(default_factory=dict)  # symbol -> (base, quote) from exchangeInfo
    no_offset: str = ""  # why no offset could be found (the error a local time then raises)
    local_times: bool = False  # a local (not epoch) time was converted: the offset was used

    def bad(self, column: str, index: int | None, value: object, why: str) -> BadValue:
        line = None if index is None else self.row_offset + index + 2
        where = f"line {line}" if line is not None else "a line"
        return BadValue(
            f"{self.path} ({self.member}): {where}, column {column!r}: {value!r}: {why}. The file is kept under "
            "raw/; fix the parser (or the column scale) and re-ingest - no new download id is needed.",
            path=self.path,
            column=column,
            line=line,
            value=value,
        )


def _first_index(mask: pa.Array) -> int:
    return int(pc.index(mask, True).as_py())


def ints(arr: pa.Array, header: str, ctx: ConvertContext) -> pa.Array:
    """Exact int64 ids (surrounding spaces allowed)."""
    try:
        return pc.cast(arr, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    trimmed = pc.utf8_trim_whitespace(arr)
    try:
        return pc.cast(trimmed, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        for i, v in enumerate(trimmed.to_pylist()):
            if v is None:
                continue
            if not re.fullmatch(r"[+-]?\d+", v) or not -(2**63) <= int(v) < 2**63:
                raise ctx.bad(header, i, v, "not an integer id (ids must be exact int64)") from None
        raise


def _decimals(arr: pa.Array, col: str, header: str, ctx: ConvertContext, symbols: pa.Array) -> pa.Array:
    arr, bad = strip_asset_suffix(arr, symbols, col, ctx.assets)
    if bad is not None:
        raise ctx.bad(header, bad[0], bad[1], bad[2])
    try:
        return to_decimal_array(arr, scale=_DEC_COLS[col], column=col, allow_thousands=True)
    except DecimalError as exc:
        raise ctx.bad(header, exc.row, exc.value, str(exc)) from None


def _time_format(sample: str) -> str:
    text = sample.strip()
    if re.fullmatch(r"\d{12,13}", text):
        return EPOCH_MS
    head = text.split(" ", 1)[0]
    fmt = "%y-%m-%d %H:%M:%S" if re.fullmatch(r"\d{2}-\d{1,2}-\d{1,2}", head) else "%Y-%m-%d %H:%M:%S"
    return fmt + ".%f" if re.search(r":\d{2}\.\d{1,3}$", text) else fmt


# Days since the epoch of each month's first day, and its length, for 1970-01..2199-12 (the fast time path's range).
_MONTHS = np.arange(np.datetime64("1970-01"), np.datetime64("2200-01"))
_MONTH_FIRST_DAY = _MONTHS.astype("datetime64[D]").astype(np.int64)
_MONTH_DAYS = (_MONTHS + 1).astype("datetime64[D]").astype(np.int64) - _MONTH_FIRST_DAY


def _time_layout(width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Separator positions and bytes, digit positions and year digits of the fixed-width ``yyyy-MM-dd HH:mm:ss``
    (19) / ``yy-MM-dd HH:mm:ss`` (17) layout."""
    y0 = width - 17  # 2 more year digits in the long form
    seps = (y0 + 2, y0 + 5, y0 + 8, y0 + 11, y0 + 14)
    digits = [i for i in range(width) if i not in seps]
    return np.array(seps), np.frombuffer(b"-- ::", dtype=np.uint8), np.array(digits), y0 + 2


_TIME_LAYOUTS = {19: _time_layout(19), 17: _time_layout(17)}


def _time_fields(digits: np.ndarray, year_digits: int) -> list[np.ndarray]:
    """Year, month, day, hour, minute, second from the (n, digits) matrix of digit values, in integer arithmetic
    (a matrix product would go through BLAS, whose own threads compete with the parse's)."""
    d = digits.astype(np.int64)
    year = d[:, 0]
    for j in range(1, year_digits):
        year = year * 10 + d[:, j]
    return [year] + [d[:, year_digits + 2 * k] * 10 + d[:, year_digits + 2 * k + 1] for k in range(5)]


def _fixed_width_seconds(arr: pa.Array, fmt: str) -> np.ndarray | None:
    """Fast exact parser for fixed-width ``yyyy-MM-dd HH:mm:ss`` / ``yy-MM-dd HH:mm:ss`` text (local seconds).

    Views the string data as an (n, width) byte matrix, checks separators and digits, reads the six fields with
    integer arithmetic and validates them (month 1-12, day within the
    month, hour < 24, ...) with month tables instead of calendar arithmetic. Returns None when the column is not
    uniformly fixed-width, has NULLs, anything invalid or a year outside 1970-2199: the caller then takes the general
    path, which names the bad value. Arrow's strptime alone is not enough: it silently turns 2026-02-30 into
    2026-03-02.
    """
    n = len(arr)
    width = 19 if fmt.startswith("%Y") else 17
    if n == 0 or arr.null_count or arr.type != pa.string():
        return None
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
    if offsets[-1] - offsets[0] != width * n or np.any(np.diff(offsets) != width):
        return None
    raw = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[0] + width * n].reshape(n, width)
    seps, sep_bytes, digit_pos, year_digits = _TIME_LAYOUTS[width]
    digits = raw[:, digit_pos] - np.uint8(48)  # uint8: anything below '0' wraps around above 9
    if np.any(raw[:, seps] != sep_bytes) or np.any(digits > 9):
        return None
    year, month, day, hour, minute, second = _time_fields(digits, year_digits)
    months = (year + (0 if width == 19 else 2000) - 1970) * 12 + month - 1
    if np.any(
        (month < 1)
        | (month > 12)
        | (months < 0)
        | (months >= len(_MONTH_DAYS))
        | (day < 1)
        | (hour > 23)
        | (minute > 59)
        | (second > 59)
    ):
        return None
    if np.any(day > _MONTH_DAYS[months]):
        return None
    return (_MONTH_FIRST_DAY[months] + day - 1) * _DAY_S + hour * 3600 + minute * 60 + second


EPOCH_MS = "epoch-ms"
_TS = pa.timestamp("ms", tz="UTC")


def _epoch_ms(arr: pa.Array, header: str, ctx: ConvertContext) -> pa.Array:
    """Epoch-millisecond text (absolute UTC: no offset applies)."""
    ok = pc.fill_null(pc.match_substring_regex(arr, r"^\s*\d{12,13}\s*$"), True)
    if not pc.all(ok).as_py():
        i = _first_index(pc.invert(ok))
        raise ctx.bad(header, i, arr[i].as_py(), "not epoch milliseconds like the column's other values")
    return pc.cast(pc.cast(pc.utf8_trim_whitespace(arr), pa.int64()), _TS)


def _local_offset_s(ctx: ConvertContext, path_hint: str) -> int:
    if ctx.offset is None:
        raise UnknownTimezone(ctx.no_offset or f"{path_hint}: no UTC offset for the local times", path=ctx.path)
    ctx.local_times = True
    return ctx.offset * 60


def times(arr: pa.Array, col: str, header: str, ctx: ConvertContext) -> pa.Array:
    """Local ``yyyy-MM-dd HH:mm:ss[.fff]`` text -> UTC timestamp[ms] with the file's offset; epoch ms as is."""
    valid = arr.drop_null()
    if len(valid) == 0:
        return pa.nulls(len(arr), _TS)
    fmt = ctx.time_format.get(col) or _time_format(valid[0].as_py())
    ctx.time_format[col] = fmt
    if fmt == EPOCH_MS:
        return _epoch_ms(arr, header, ctx)
    offset_s = _local_offset_s(ctx, f"{ctx.path} ({ctx.member})")
    millis = None
    if fmt.endswith(".%f") and not arr.null_count and pc.all(pc.equal(pc.utf8_length(arr), 23)).as_py():
        millis = ints(pc.utf8_slice_codeunits(arr, 20, 23), header, ctx).to_numpy()
        fast = _fixed_width_seconds(pc.utf8_slice_codeunits(arr, 0, 19), fmt[:-3])
    else:
        fast = _fixed_width_seconds(arr, fmt)
    if fast is not None:
        ms = (fast - offset_s) * 1000 + (millis if millis is not None else 0)
        return pa.array(ms, pa.int64()).cast(_TS)
    # General path (NULLs, unpadded fields, or an invalid value somewhere): Python validates each value.
    values = arr.to_pylist()
    utc_ms: list[int | None] = []
    for i, v in enumerate(values):
        if v is None:
            utc_ms.append(None)
            continue
        try:
            dt = datetime.strptime(v.strip(), fmt)
        except ValueError:
            raise ctx.bad(header, i, v, f"not a time in the format {fmt!r} (local display time)") from None
        if dt.microsecond % 1000:
            raise ctx.bad(header, i, v, "more precise than milliseconds")
        utc_ms.append(int(dt.replace(tzinfo=UTC).timestamp()) * 1000 + dt.microsecond // 1000 - offset_s * 1000)
    return pc.cast(pa.array(utc_ms, pa.int64()), _TS)


def _bools(arr: pa.Array, header: str, ctx: ConvertContext) -> pa.Array:
    low = pc.utf8_lower(pc.utf8_trim_whitespace(arr))
    is_true = pc.is_in(low, value_set=pa.array(sorted(_TRUE)))
    is_false = pc.is_in(low, value_set=pa.array(sorted(_FALSE)))
    bad = pc.and_(pc.is_valid(low), pc.invert(pc.or_(is_true, is_false)))
    if pc.any(bad).as_py():
        i = _first_index(bad)
        raise ctx.bad(header, i, arr[i].as_py(), "not a boolean (true/false, Y/N)")
    return pc.if_else(pc.is_null(low), pa.scalar(None, pa.bool_()), is_true)


def _extra(batch: pa.RecordBatch, binding: Binding) -> pa.Array:
    """The unknown columns of each row as one JSON object (the same text the REST side stores)."""
    return extra_from_columns({key: batch.column(csv_name) for key, csv_name in binding.unknown})


def _constant(value: Any, n: int, typ: pa.DataType, cache: dict | None = None) -> pa.Array:
    """An array of ``n`` copies of ``value``; cached per column so batches get zero-copy slices."""
    key = (value, str(typ))
    if cache is not None:
        hit = cache.get(key)
        if hit is not None and len(hit) >= n:
            return hit.slice(0, n)
    arr = pa.nulls(n, typ) if value is None else pc.fill_null(pa.nulls(n, typ), pa.scalar(value, typ))
    if cache is not None:
        cache[key] = arr
    return arr


def _convert_column(f: pa.Field, batch: pa.RecordBatch, binding: Binding, ctx: ConvertContext) -> pa.Array:
    n = batch.num_rows
    name = f.name
    constants = {
        "account": ctx.account,
        "market": ctx.market,
        "source": SOURCE,
        "download_id": ctx.download_id,
        "utc_offset_minutes": ctx.offset,
    }
    if name in constants:
        return _constant(constants[name], n, f.type, ctx.cache)
    if name == "ingested_at":
        return _constant(pa.scalar(ctx.ingested_at_ms, pa.int64()).cast(f.type).as_py(), n, f.type, ctx.cache)
    if name == "extra":
        return _extra(batch, binding) if binding.unknown else _constant(None, n, f.type, ctx.cache)
    if name not in binding.columns:
        return _constant(None, n, f.type, ctx.cache)
    csv_name = binding.columns[name]
    col = batch.column(csv_name)
    if name in _DEC_COLS:
        out = _decimals(col, name, csv_name, ctx, batch.column(binding.columns["symbol"]))
    elif name in _INT_COLS:
        out = ints(col, csv_name, ctx)
    elif name in TIME_COLUMNS:
        out = times(col, name, csv_name, ctx)
    elif name in _BOOL_COLS:
        out = _bools(col, csv_name, ctx)
    elif name in ENUMS:
        out, bad = enum_values(col, name)
        if bad is not None:
            raise ctx.bad(
                csv_name,
                bad[0],
                bad[1],
                f"not a {name} value the API knows, nor a website spelling of one (docs/export-files.md §Values)",
            )
    else:
        out = col
    if not f.nullable and out.null_count:
        i = _first_index(pc.is_null(out))
        raise ctx.bad(csv_name, i, col[i].as_py(), "empty, but every order needs it")
    return out


def convert_batch(batch: pa.RecordBatch, binding: Binding, ctx: ConvertContext) -> pa.RecordBatch:
    """One CSV batch (all strings) -> a batch in the futures schema; the first failing column (in schema order)
    raises.

    Columns convert one after the other on the calling thread: a thread-pool task per column was slower (GIL
    hand-offs between tiny tasks), and the day writer's encoder threads use the other core.
    """
    return pa.RecordBatch.from_arrays([_convert_column(f, batch, binding, ctx) for f in SCHEMA], schema=SCHEMA)

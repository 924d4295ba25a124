"""Website-style values of an export file -> the API's spellings, exactly or not at all.

Enum columns: a value already spelled like the API (``FILLED``, ``STOP_MARKET``) is kept; a website spelling
(``Filled``, ``Partially Filled``, ``Stop Market``, ``Long``) is mapped through :data:`ENUMS` and
:data:`SPELLINGS`; anything else is an error, never a warning (a silently unmapped value would undercount every
query on the column). Amounts may carry the asset they are counted in (``0.010BTC``, ``0.00352911 BNB``): the
suffix must be the symbol's base asset for quantities and its quote asset for prices and quote amounts, where the
symbol's assets come from exchangeInfo or, failing that, from its name against :data:`QUOTE_ASSETS`. The tables and
their sources: docs/export-files.md §Values.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# API enums of a futures order (docs/binance-facts.md §Futures order enums)
ENUMS: dict[str, frozenset[str]] = {
    "status": frozenset({"NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"}),
    "side": frozenset({"BUY", "SELL"}),
    "position_side": frozenset({"BOTH", "LONG", "SHORT"}),
    "type": frozenset(
        {"LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"}
    ),
    "time_in_force": frozenset({"GTC", "IOC", "FOK", "GTX", "GTD"}),
    "working_type": frozenset({"MARK_PRICE", "CONTRACT_PRICE"}),
}
ENUMS["orig_type"] = ENUMS["type"]
# Website spellings whose upper-snake form is not the API's (after case and separators are normalised).
SPELLINGS: dict[str, dict[str, str]] = {
    "status": {"CANCELLED": "CANCELED", "PARTIAL_FILLED": "PARTIALLY_FILLED", "PARTIALLY_FILL": "PARTIALLY_FILLED"},
    "type": {
        "STOP_LIMIT": "STOP",
        "TAKE_PROFIT_LIMIT": "TAKE_PROFIT",
        "TRAILING_STOP": "TRAILING_STOP_MARKET",
        "TRAILING_STOP_MARKET": "TRAILING_STOP_MARKET",
    },
}
SPELLINGS["orig_type"] = SPELLINGS["type"]
# Quote assets of USDⓈ-M and PM UM symbols, longest first so "FDUSD" is tried before "USD"-like tails.
QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB")
QTY_COLUMNS = frozenset({"orig_qty", "executed_qty"})
_API = re.compile(r"^[A-Z0-9_]+$")
_SUFFIX = re.compile(r"^\s*([+-]?[0-9][0-9,]*(?:\.[0-9]*)?)\s*([A-Za-z][A-Za-z0-9]*)\s*$")
_DELIVERY = re.compile(r"_\d{6}$")
_NUMBER = re.compile(r"\s*[+-]?[0-9][0-9,]*(?:\.[0-9]*)?")


def enum_values(arr: pa.Array, column: str) -> tuple[pa.Array, tuple[int, str] | None]:
    """The column in API spelling, and the first value that maps to nothing as (index, value)."""
    known = ENUMS.get(column)
    if known is None or len(arr) == 0:
        return arr, None
    if all(v is None or (v == v.strip() and _API.match(v)) for v in pc.unique(arr).to_pylist()):
        return arr, None  # the API's spellings already (the API export): one hash pass, no copy
    dictionary = pc.dictionary_encode(arr)
    mapped: list[str | None] = []
    for value in dictionary.dictionary.to_pylist():
        text = value.strip()
        if _API.match(text):
            mapped.append(text)  # the API's own spelling; a value Binance added later passes (the enum check warns)
            continue
        snake = re.sub(r"[\s\-]+", "_", text).upper()
        snake = SPELLINGS.get(column, {}).get(snake, snake)
        if snake not in known:
            bad = int(pc.index(arr, value).as_py())
            return arr, (bad, value)
        mapped.append(snake)
    return pc.take(pa.array(mapped, pa.string()), dictionary.indices), None


def symbol_assets(symbol: str, known: dict[str, tuple[str, str]]) -> tuple[str, str] | None:
    """(base, quote) of a futures symbol: exchangeInfo's when known, else split off a known quote asset."""
    if symbol in known:
        return known[symbol]
    name = _DELIVERY.sub("", symbol)
    for quote in QUOTE_ASSETS:
        if name.endswith(quote) and len(name) > len(quote):
            return name[: -len(quote)], quote
    return None


def _has_letter(arr: pa.Array) -> bool:
    """Whether an ASCII letter occurs in the array's character data: one vectorised scan of the raw buffer instead of
    a regex per value (a superset for a sliced array, which only triggers the precise check)."""
    if arr.type != pa.string():
        return True  # the precise check decides
    data = arr.buffers()[2]
    if data is None:
        return False
    folded = np.frombuffer(data, dtype=np.uint8) | np.uint8(0x20)  # 'A'..'Z' -> 'a'..'z'
    return bool(np.any((folded - np.uint8(ord("a"))) < 26))  # uint8: below 'a' wraps around above 25


def strip_asset_suffix(
    arr: pa.Array, symbols: pa.Array, column: str, known: dict[str, tuple[str, str]]
) -> tuple[pa.Array, tuple[int, str, str] | None]:
    """Amounts without their asset suffix, and the first suffix that is not the symbol's right asset as
    (index, value, why). Values without a suffix pass unchanged."""
    if not _has_letter(arr):
        return arr, None
    has = pc.fill_null(pc.match_substring_regex(arr, r"[A-Za-z]"), False)
    if not pc.any(has).as_py():
        return arr, None
    values = arr.to_pylist()
    syms = symbols.to_pylist()
    out = list(values)
    want = "base" if column in QTY_COLUMNS else "quote"
    for i in np.flatnonzero(has.to_numpy(zero_copy_only=False)):
        value = values[i]
        assets = symbol_assets(str(syms[i]), known)
        expected = None if assets is None else assets[0] if want == "base" else assets[1]
        # the asset itself may start with digits (1000PEPE): split off the expected asset first, then any letters
        if expected and value.upper().endswith(expected):
            number = value[: -len(expected)].rstrip()
            if _NUMBER.fullmatch(number):
                out[i] = number
                continue
        m = _SUFFIX.match(value)
        if m is None:
            return arr, (int(i), value, "not a number with an asset suffix")
        if expected is None:
            why = f"the assets of symbol {syms[i]!r} are unknown, so the suffix cannot be checked"
            return arr, (int(i), value, why)
        why = f"the suffix {m.group(2)!r} is not {syms[i]}'s {want} asset {expected!r}, which this column counts"
        return arr, (int(i), value, why)
    return pa.array(out, pa.string()), None

"""Whether a member's last line, when no line break ends it, is a whole row or a row cut short.

A file Binance's generator cut inside a row carries a valid ZIP size and CRC, so only its text can show the cut.
Whether Binance ends its files with a line break is not known
(docs/export-files.md §Encoding, line endings and quoting), so a missing final line break alone cannot refuse a
file: its last row is read strictly instead. The last field of a cut row is a prefix of the true value, and for
many columns a prefix is still a valid value (order id ``77`` cut to ``7``, ``00:00:10`` to ``00:00:1``): the row
counts as whole only when its last field cannot be such a prefix (see docs/design/exports.md §Refusals).
"""

from __future__ import annotations

import csv
import re

from pipeline.exports.parsing.binding import Binding
from pipeline.exports.parsing.offsets import TIME_COLUMNS
from pipeline.exports.parsing.values import ENUMS, SPELLINGS

_EPOCH_MS = re.compile(r"\d{13}")  # epoch milliseconds from 2001-09-09 to 2286: always 13 digits


def _whole_time(value: str, fmt: str) -> bool:
    """``value`` has the full width of the file's time format (every field two digits, and ``.SSS`` when the
    file's times carry milliseconds), so no character can be missing from its end."""
    if fmt == "epoch-ms":
        return bool(_EPOCH_MS.fullmatch(value))
    date = r"\d{4}" if fmt.startswith("%Y") else r"\d{2}"
    millis = r"\.\d{3}" if fmt.endswith(".%f") else ""
    return bool(re.fullmatch(date + r"-\d{2}-\d{2} \d{2}:\d{2}:\d{2}" + millis, value))


def _whole_enum(value: str, column: str) -> bool:
    """An enum value that is no proper prefix of another accepted spelling (``EXPIRED`` may be a cut
    ``EXPIRED_IN_MATCH``, ``Stop`` a cut ``Stop Market``)."""
    known = ENUMS[column] | set(SPELLINGS.get(column, {}))
    norm = re.sub(r"[\s_]+", "_", value.strip().upper())
    return norm in known and not any(k != norm and k.startswith(norm) for k in known)


def cut_last_row(tail: bytes, binding: Binding, time_formats: dict[str, str]) -> str | None:
    """Why the unterminated last line (the end of ``tail``) may be a row cut short; None when it is provably whole.

    ``time_formats`` are the formats the parse found for the file's time columns (schema column -> format)."""
    if tail.endswith(b"\r"):
        return "it ends inside a line break (a CR without its LF)"
    raw = tail.rsplit(b"\n", 1)[-1]
    if b"\n" not in tail:
        return f"its last line is longer than the {len(tail):,} bytes kept to check it"
    try:
        fields = next(csv.reader([raw.decode("utf-8")]))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return "its last line is not a readable CSV row"
    if len(fields) != len(binding.names):
        return f"its last line has {len(fields)} fields, the header {len(binding.names)}"
    if raw.endswith(b'"'):
        return None  # a quoted last field ends with its closing quote
    header, value = binding.names[-1], fields[-1]
    column = next((c for c, name in binding.columns.items() if name == header), None)
    if column in TIME_COLUMNS and column in time_formats and _whole_time(value.strip(), time_formats[column]):
        return None
    if column in ENUMS and _whole_enum(value, column):
        return None
    return f"its last field ({header} = {value!r}) would still be a valid value if characters were cut from it"

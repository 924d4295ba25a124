"""The UTC offset of an export's local display times: labels, resolution, and proof from REST orders.

``Time``/``Update Time`` hold the account's display-timezone text. Its offset comes from, best first: a proven
offset (``utc_offset_minutes``, see :class:`OffsetProof`), a ``(UTC...)`` label in the column header
(``Time(UTC)`` = 0), the CSV/ZIP file name (``(UTC+8)``, ``(UTC--6)`` with the double minus of real names,
``(UTC0)``, ``(UTC+5:30)``), another time column's header label, then the configured default. No offset found is
an error, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.exports.parsing.errors import UnknownTimezone

if TYPE_CHECKING:
    from pipeline.exports.parsing.binding import Binding

TIME_COLUMNS = frozenset({"time", "update_time", "good_till_date"})  # schema columns holding local display times
MINUTE_MS = 60_000
_OFFSET = re.compile(r"\(UTC\s*(?:(?P<sign>\+|-|--|−)?\s*(?P<h>\d{1,2})(?::?(?P<m>\d{2}))?)?\)", re.IGNORECASE)


def parse_offset(text: str) -> int | None:
    """Offset minutes from a ``(UTC+8)`` / ``(UTC--6)`` / ``(UTC0)`` / ``(UTC+5:30)`` / ``(UTC)`` label."""
    m = _OFFSET.search(text)
    if not m:
        return None
    if m.group("h") is None:
        return 0
    minutes = int(m.group("h")) * 60 + int(m.group("m") or 0)
    if minutes > 14 * 60:
        return None
    return -minutes if m.group("sign") in ("-", "--", "−") else minutes


def valid_offset(minutes: int) -> bool:
    """Real UTC offsets: -12:00..+14:00 in quarter hours (Binance offers whole and half hours)."""
    return -12 * 60 <= minutes <= 14 * 60 and minutes % 15 == 0


@dataclass(frozen=True)
class OffsetHints:
    """What the caller knows about the offset besides the file itself."""

    explicit: int | None  # a proven offset: overrides the file's labels
    default: int | None  # configuration: used only where the file says nothing
    source_name: str | None  # the file's name as served (the raw copy is renamed to <downloadId>.<ext>)


def resolve_offsets(
    binding: Binding, member: str, path: Path, hints: OffsetHints, warnings: list[str]
) -> dict[str, int]:
    """Offset minutes of each bound time column (see the module doc for the order); disagreements with a proven
    offset are added to ``warnings``."""
    explicit = hints.explicit
    names = (member, path.name, hints.source_name or "")
    from_name = next((o for o in map(parse_offset, names) if o is not None), None)
    if from_name is None:  # "Time(UTC)" but a bare "Update Time": the label is the file's
        labels = set(binding.header_offsets.values())
        from_name = labels.pop() if len(labels) == 1 else None
    if from_name is None:
        from_name = hints.default
    offsets: dict[str, int] = {}
    for col in TIME_COLUMNS & set(binding.columns):
        if explicit is not None:
            offsets[col] = explicit
            seen = binding.header_offsets.get(col, from_name)
            if seen is not None and seen != explicit:
                warnings.append(
                    f"{path.name}: {col} labelled UTC{seen / 60:+g} in the file, but "
                    f"utc_offset_minutes={explicit} was given; using {explicit}"
                )
        elif col in binding.header_offsets:
            offsets[col] = binding.header_offsets[col]
        elif from_name is not None:
            offsets[col] = from_name
        else:
            raise UnknownTimezone(
                f"{path} ({member}): column {binding.columns[col]!r} holds local display-timezone times, but "
                "neither the file name nor the header says which offset (e.g. '(UTC+8)'). Set "
                "ORDERLAKE_EXPORT_UTC_OFFSET_MINUTES (the account's display timezone on the Binance website, "
                "e.g. 480 for UTC+8) or ingest while REST still returns some of the export's orders, so the "
                "offset can be inferred.",
                path=path,
            )
    return offsets


@dataclass(frozen=True)
class OffsetEvidence:
    """An offset proven by orders that are both in the export and in a REST answer."""

    offset_minutes: int
    matched: int  # export orders found among the reference orders (all of them agree)


class OffsetProof:
    """Collects, for orders both in the export and in a REST answer, the export's local creation time read as if it
    were UTC minus REST's ``time`` (epoch ms; unlike ``updateTime`` it never changes), then decides the offset."""

    def __init__(self, reference_orders: Iterable[Mapping[str, Any]]) -> None:
        self._ref = {(str(o["symbol"]), int(o["orderId"])): int(o["time"]) for o in reference_orders}
        self._ref_ids = np.array(sorted({k[1] for k in self._ref}), dtype=np.int64)
        self._diffs: list[int] = []

    @property
    def has_reference(self) -> bool:
        return bool(self._ref)

    def add(self, symbols: np.ndarray, ids: np.ndarray, local_ms: np.ndarray) -> None:
        """One batch of the export: symbols, order ids and local ``Time`` read as UTC (ms), aligned."""
        hit = np.isin(ids, self._ref_ids)
        for sym, oid, local in zip(symbols[hit], ids[hit], local_ms[hit], strict=True):
            api_ms = self._ref.get((str(sym), int(oid)))
            if api_ms is not None:
                self._diffs.append(int(local) - api_ms)

    def evidence(self, path: Path) -> OffsetEvidence | None:
        """The one offset every matched order agrees on; None when no order matched.

        The file has second precision, so each difference must be within 1 s of whole minutes. Raises
        :class:`UnknownTimezone` when matched orders disagree: a wrong guess would shift every timestamp, so the file
        is not ingested until a person decides.
        """
        diffs = self._diffs
        if not diffs:
            return None
        minutes = {round(d / MINUTE_MS) for d in diffs}
        exact = all(abs(d - round(d / MINUTE_MS) * MINUTE_MS) <= 1000 for d in diffs)
        if len(minutes) != 1 or not exact or not valid_offset(next(iter(minutes))):
            found = sorted(minutes)[:5]
            raise UnknownTimezone(
                f"{path}: the local times of {len(diffs)} order(s) that REST also returns imply different or "
                f"impossible UTC offsets (minutes: {found}); not ingested. Check the export against the Binance "
                "website and set ORDERLAKE_EXPORT_UTC_OFFSET_MINUTES, then ingest with offset inference off.",
                path=path,
            )
        return OffsetEvidence(next(iter(minutes)), len(diffs))

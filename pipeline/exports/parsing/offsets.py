"""The UTC offset of an export's local display times: labels, the file's one offset, and proof from REST orders.

``Time``/``Update Time`` hold the account's display-timezone text. One offset applies to every time column of a
file (:func:`decide_offset`), best first: proven by REST orders (:class:`OffsetProof`), configured, a ``(UTC...)``
header label (``Time(UTC)`` = 0), a file-name label (``(UTC+8)``, ``(UTC--6)`` with the double minus of real names,
``(UTC0)``, ``(UTC+5:30)``). Labels that disagree are refused; no offset found is an error, never a guess.
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

    proven: int | None  # proven by inference from REST orders: overrides everything
    configured: int | None  # ORDERLAKE_EXPORT_UTC_OFFSET_MINUTES: overrides the file's labels
    source_name: str | None  # the file's name as served (the raw copy is renamed to <downloadId>.<ext>)
    inference_note: str = ""  # why inference proved nothing (shown with the offset that was used)


@dataclass(frozen=True)
class OffsetDecision:
    """The one offset of every local time column of a file, and where it came from."""

    minutes: int | None
    source: str  # "proven" | "configured" | "header label" | "file-name label" | "none"
    note: str  # one line for the ledger and the warnings
    error: str = ""  # when minutes is None: the message a local time raises


def _labels(values: dict[str, int | None]) -> dict[str, int]:
    return {where: minutes for where, minutes in values.items() if minutes is not None}


def _fmt(minutes: int) -> str:
    h, m = divmod(abs(minutes), 60)
    return f"UTC{'-' if minutes < 0 else '+'}{h}" + (f":{m:02d}" if m else "")


def decide_offset(bindings: list[tuple[str, Binding]], path: Path, hints: OffsetHints) -> OffsetDecision:
    """One offset for the whole file, best first: proven, configured, header label, file-name label.

    Labels that disagree (two header labels, two members' names, header against name) are refused with a message
    naming both and the setting that resolves it, unless a proven or configured offset decides.
    """
    header = _labels({f"header {b.header[b_idx]!r}": off for _, b in bindings for b_idx, off in _header_label_items(b)})
    names = _labels({f"file name {n!r}": parse_offset(n) for n in _names(bindings, path, hints)})
    seen = {**header, **names}
    described = ", ".join(f"{where} says {_fmt(m)}" for where, m in seen.items())
    note = f" ({hints.inference_note})" if hints.inference_note else ""
    for source, value in (("proven", hints.proven), ("configured", hints.configured)):
        if value is not None:
            disagree = {w: m for w, m in seen.items() if m != value}
            extra = f"; the file's labels differ: {described}" if disagree else ""
            return OffsetDecision(value, source, f"UTC offset {_fmt(value)} {source}{extra}")
    if (
        len(set(header.values())) > 1
        or len(set(names.values())) > 1
        or (header and names and set(header.values()) != set(names.values()))
    ):
        raise UnknownTimezone(
            f"{path}: the file's time-zone labels disagree ({described}); not ingested, because one of them would "
            "shift every time. Set ORDERLAKE_EXPORT_UTC_OFFSET_MINUTES to the display time zone the export was made "
            "with (the Binance website's setting, e.g. 480 for UTC+8), then `orderlake exports reingest ID`; or "
            f"re-ingest while REST still returns the export's last orders, so the offset is proven{note}.",
            path=path,
        )
    for source, found in (("header label", header), ("file-name label", names)):
        if found:
            value = next(iter(found.values()))
            return OffsetDecision(value, source, f"UTC offset {_fmt(value)} from the {source}{note}")
    return OffsetDecision(
        None,
        "none",
        f"no UTC offset{note}",
        error=(
            f"{path}: the file holds local display-time times, but neither its name nor its header says which UTC "
            "offset (e.g. '(UTC+8)'). Set ORDERLAKE_EXPORT_UTC_OFFSET_MINUTES (the account's display time zone "
            "on the Binance website, e.g. 480 for UTC+8), then `orderlake exports reingest ID`; or ingest while "
            f"REST still returns some of the export's orders, so the offset can be proven{note}."
        ),
    )


def _header_label_items(binding: Binding) -> list[tuple[int, int]]:
    """(header index, offset) of every labelled time column."""
    index = {name: i for i, name in enumerate(binding.names)}
    return [(index[binding.columns[col]], off) for col, off in binding.header_offsets.items() if col in TIME_COLUMNS]


def _names(bindings: list[tuple[str, Binding]], path: Path, hints: OffsetHints) -> list[str]:
    """The names that may carry a label: each member's, the file's, the served file's."""
    names = [member for member, _ in bindings] + [path.name]
    if hints.source_name:
        names.append(hints.source_name)
    return list(dict.fromkeys(names))


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

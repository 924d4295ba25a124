"""The streaming reads of an export file: parse it into batches, count its data lines, prove its UTC offset.

Each member stream is read in small blocks (:data:`BLOCK_BYTES`), parsed and converted on a small thread pool
(:mod:`~.blocks`; quoted text by ``pyarrow.csv.open_csv``), so memory stays bounded for multi-million-row files.
UTF-8 with or without BOM, CRLF or LF, RFC 4180 quoting; the line ``No data matches the criteria.`` means "no rows".
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.exports.parsing.binding import REQUIRED, Binding, bind_header
from pipeline.exports.parsing.blocks import BlockParse
from pipeline.exports.parsing.containers import (
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_UNCOMPRESSED,
    Member,
    open_members,
    read_header,
)
from pipeline.exports.parsing.convert import ConvertContext, convert_batch, ints, times
from pipeline.exports.parsing.csv_read import EMPTY_SENTINEL, csv_batches
from pipeline.exports.parsing.errors import BadRow, TruncatedFile
from pipeline.exports.parsing.last_line import cut_last_row
from pipeline.exports.parsing.offsets import OffsetEvidence, OffsetHints, OffsetProof, decide_offset
from pipeline.storage.schemas import futures_orders

log = logging.getLogger(__name__)

# The size of a batch. pyarrow's streaming CSV reader (quoted text) prefetches up to 32 blocks on a background
# thread, whatever the consumer does, so its memory grows with 33x the block size; 1 MiB blocks (~5000 rows) keep it
# small.
BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class FileKind:
    """What one kind of export file binds its header by and converts its rows to: the order history here, trade
    and transaction (income) history in :mod:`pipeline.trades.export_files`."""

    what: str  # for messages: "futures ORDER-history export"
    aliases: dict[str, tuple[str, ...]] | None  # canonical column -> header spellings (None: the order table)
    required: tuple[str, ...]
    convert: Callable[[pa.RecordBatch, Binding, ConvertContext], pa.RecordBatch]
    markets: Mapping[str, str]  # market -> lake table


ORDERS = FileKind(
    "futures ORDER-history export (not trade/transaction history)",
    None,
    REQUIRED,
    convert_batch,
    futures_orders.MARKETS,
)


@dataclass
class ParseStats:
    """Filled while :func:`parse_export` runs (pass one in to read it afterwards)."""

    rows: int = 0
    data_lines: int = 0  # physical lines after each header, minus sentinel lines
    sentinels: int = 0
    members: list[str] = field(default_factory=list)
    container: str = ""
    utc_offset_minutes: int | None = None
    offset_source: str = ""
    offset_note: str = ""
    headers: int = 0  # members with a header line (the sentinel alone is none)
    unterminated: list[str] = field(default_factory=list)  # members whose last line has no line break
    cut_rows: list[str] = field(default_factory=list)  # why an unterminated last row may be cut (per member)
    quoted: bool = False  # some member quotes values (a quoted line break makes lines and rows differ)
    warnings: list[str] = field(default_factory=list)


def parse_export(
    path: str | os.PathLike[str],
    *,
    market: str,
    account: str,
    download_id: str | None = None,
    utc_offset_minutes: int | None = None,
    default_utc_offset_minutes: int | None = None,
    source_name: str | None = None,
    inference_note: str = "",
    symbol_assets: dict[str, tuple[str, str]] | None = None,
    block_bytes: int = BLOCK_BYTES,
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED,
    max_ratio: float = DEFAULT_MAX_RATIO,
    ingested_at: datetime | None = None,
    stats: ParseStats | None = None,
    kind: FileKind = ORDERS,
) -> Iterator[pa.RecordBatch]:
    """Stream an export file as record batches in its ``kind``'s schema (default futures_orders; rows in file order).

    ``utc_offset_minutes`` is a proven offset and ``default_utc_offset_minutes`` the configured one; with neither,
    the file's labels decide (:func:`~.offsets.decide_offset`: one offset for the whole file). ``source_name`` is
    the name the file was served under, which may carry the ``(UTC+8)`` label; ``symbol_assets`` maps symbols to
    (base, quote) from exchangeInfo for asset-suffixed amounts. Batches hold about ``block_bytes`` of CSV each.
    Warnings go to ``stats.warnings`` and the log.
    """
    path = Path(path)
    if market not in kind.markets:
        raise ValueError(f"unknown market {market!r}; expected one of {sorted(kind.markets)}")
    stats = stats if stats is not None else ParseStats()
    ingested_ms = int((ingested_at or datetime.now(UTC)).timestamp() * 1000)
    budget = [max_uncompressed_bytes]
    hints = OffsetHints(utc_offset_minutes, default_utc_offset_minutes, source_name, inference_note)
    with contextlib.ExitStack() as stack:
        members, stats.container = open_members(
            path, stack, max_bytes=max_uncompressed_bytes, max_ratio=max_ratio, budget=budget
        )
        bound = [(m, _member_binding(m, path, budget, stats, kind)) for m in members]
        decision = decide_offset([(m.name, b) for m, b in bound if b is not None], path, hints)
        stats.utc_offset_minutes, stats.offset_source, stats.offset_note = (
            decision.minutes,
            decision.source,
            decision.note,
        )
        for member, binding in bound:
            stats.members.append(member.name)
            if binding is None:
                continue
            ctx = ConvertContext(
                path,
                member.name,
                market,
                account,
                download_id,
                ingested_ms,
                decision.minutes,
                assets=dict(symbol_assets or {}),
                no_offset=decision.error,
            )
            yield from _parse_member(member, binding, path, ctx, block_bytes=block_bytes, stats=stats, kind=kind)
    if stats.sentinels and stats.rows:
        raise BadRow(
            f"{path}: the empty-export line '{EMPTY_SENTINEL}' stands in a file that also has {stats.rows} rows; "
            "such a file is not one Binance writes, so nothing was ingested. Download the export again.",
            path=path,
        )
    for w in stats.warnings:
        log.warning("%s", w)


def _member_binding(
    member: Member, path: Path, budget: list[int], stats: ParseStats, kind: FileKind = ORDERS
) -> Binding | None:
    """The header binding of a member; None for a member that is the empty-export sentinel alone.

    A 0-byte member is refused: a ZIP whose CSV is empty is no export Binance writes, and accepting it would say
    "no orders on these days"."""
    before = budget[0]
    header = read_header(member, path)
    budget[0] = before  # the header peek is not counted twice
    if header is None:
        raise TruncatedFile(
            f"{path}: {member.name!r} is empty (0 bytes, no header); an export always has at least a header or the "
            f"line '{EMPTY_SENTINEL}'. Nothing was ingested; the file stays under raw/ (its transfer was checked, so "
            "Binance served it so). Check the export on the Binance website; after a fix, `orderlake exports "
            "reingest ID` parses it again (no new download id).",
            path=path,
        )
    if len(header) == 1 and header[0].strip().strip('"') == EMPTY_SENTINEL:
        stats.sentinels += 1
        return None
    stats.headers += 1
    binding, warnings = bind_header(
        header, path=f"{path} ({member.name})", aliases=kind.aliases, required=kind.required, what=kind.what
    )
    stats.warnings.extend(warnings)
    return binding


def _parse_member(
    member: Member,
    binding: Binding,
    path: Path,
    ctx: ConvertContext,
    *,
    block_bytes: int,
    stats: ParseStats,
    kind: FileKind = ORDERS,
) -> Iterator[pa.RecordBatch]:
    sentinels_before, rows_before = stats.sentinels, stats.rows
    stream = member.opener()
    with stream:
        if binding.missing:  # the first row raises MissingColumn: read serially up to it
            strings = csv_batches(stream, binding, path, member.name, stats, block_bytes=block_bytes)
            batches = (kind.convert(b, binding, ctx) for b in strings if b.num_rows and _require(binding, path, member))
        else:
            batches = BlockParse(binding, path, member.name, ctx, kind.convert, stats).batches(stream, block_bytes)
        for out in batches:
            ctx.row_offset += out.num_rows
            stats.rows += out.num_rows
            yield out
        stats.data_lines += max(0, stream.lines - 1 - (stats.sentinels - sentinels_before))
        if stream.count and stream.last_byte != b"\n":
            stats.unterminated.append(member.name)
            why = cut_last_row(stream.tail, binding, ctx.time_format) if stats.rows > rows_before else None
            if why:
                stats.cut_rows.append(f"{member.name!r}: {why}")
        stats.quoted = stats.quoted or stream.quotes > 0


def _require(binding: Binding, path: Path, member: Member) -> bool:
    binding.require(f"{path} ({member.name})")
    return True


@dataclass(frozen=True)
class FileTimes:
    """Every row's symbol, order id and local ``Time`` read as if it were UTC (ms): what offset inference needs."""

    symbols: np.ndarray
    ids: np.ndarray
    local_ms: np.ndarray

    def symbols_between(self, lo_ms: int, hi_ms: int) -> list[str]:
        """The file's symbols with an order created in [lo_ms, hi_ms] (local time read as UTC), most orders first."""
        hit = (self.local_ms >= lo_ms) & (self.local_ms <= hi_ms)
        names, counts = np.unique(self.symbols[hit].astype(str), return_counts=True)
        return [str(n) for n in names[np.argsort(-counts, kind="stable")]]

    @property
    def last_ms(self) -> int | None:
        return int(self.local_ms.max()) if len(self.local_ms) else None


def file_times(path: str | os.PathLike[str], *, max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED) -> FileTimes:
    """Read only the symbol, order id and ``Time`` columns of an export (see :class:`FileTimes`)."""
    parts = list(_local_times(Path(path), max_uncompressed_bytes))
    if not parts:
        empty = np.array([], dtype=np.int64)
        return FileTimes(np.array([], dtype=object), empty, empty)
    return FileTimes(*(np.concatenate([p[k] for p in parts]) for k in range(3)))


def infer_utc_offset(
    path: str | os.PathLike[str],
    reference_orders: Iterable[Mapping[str, Any]],
    *,
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED,
    times_of_file: FileTimes | None = None,
) -> OffsetEvidence | None:
    """Which UTC offset the export's local ``Time`` values use, from orders REST also returns.

    ``reference_orders``: order objects of ``/fapi/v1/allOrders`` (or PM's) overlapping the export. Returns None
    when no order is in both; raises :class:`UnknownTimezone` when matched orders disagree (see
    :meth:`OffsetProof.evidence`).
    """
    path = Path(path)
    proof = OffsetProof(reference_orders)
    if not proof.has_reference:
        return None
    ft = times_of_file or file_times(path, max_uncompressed_bytes=max_uncompressed_bytes)
    proof.add(ft.symbols, ft.ids, ft.local_ms)
    return proof.evidence(path)


def _local_times(path: Path, max_bytes: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(symbols, order ids, local ``Time`` read as if it were UTC, in ms) per batch, reading only 3 columns."""
    stats = ParseStats()
    budget = [max_bytes]
    with contextlib.ExitStack() as stack:
        members, _ = open_members(path, stack, max_bytes=max_bytes, max_ratio=DEFAULT_MAX_RATIO, budget=budget)
        for member in members:
            binding = _member_binding(member, path, budget, stats)
            if binding is None or binding.missing:
                continue
            names = [binding.columns[c] for c in ("symbol", "order_id", "time")]
            ctx = ConvertContext(path, member.name, "", "", None, 0, 0)
            with member.opener() as stream:
                for batch in csv_batches(
                    stream, binding, path, member.name, stats, block_bytes=BLOCK_BYTES, columns=names
                ):
                    local = times(batch.column(names[2]), "time", names[2], ctx)
                    ids = ints(batch.column(names[1]), names[1], ctx)
                    ctx.row_offset += batch.num_rows
                    t = pa.table({"s": batch.column(names[0]), "i": ids, "t": pc.cast(local, pa.int64())}).drop_null()
                    yield (t["s"].to_numpy(zero_copy_only=False), t["i"].to_numpy(), t["t"].to_numpy())


def count_data_lines(path: str | os.PathLike[str], *, max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED) -> int:
    """Non-blank lines after each member's header, excluding the empty-export sentinel.

    Independent of the CSV parser, so it cross-checks the parsed row count (a quoted line break would make them
    differ).
    """
    path = Path(path)
    total = 0
    sentinel = EMPTY_SENTINEL.encode()
    with contextlib.ExitStack() as stack:
        members, _ = open_members(
            path, stack, max_bytes=max_uncompressed_bytes, max_ratio=DEFAULT_MAX_RATIO, budget=[max_uncompressed_bytes]
        )
        for member in members:
            with member.opener() as raw:
                header_seen = False
                for line in io.BufferedReader(raw, 1 << 20):
                    s = line.strip().strip(b'"')
                    if not s or s == sentinel:
                        continue
                    if header_seen:
                        total += 1
                    header_seen = True
    return total

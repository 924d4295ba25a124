"""The streaming reads of an export file: parse it into batches, count its data lines, prove its UTC offset.

``pyarrow.csv.open_csv`` reads each member stream in small blocks (:data:`BLOCK_BYTES`), so memory stays bounded
for multi-million-row files. UTF-8 with or without BOM, CRLF or LF, RFC 4180 quoting; the line
``No data matches the criteria.`` means "no rows".
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from pipeline.exports.parsing.binding import Binding, bind_header
from pipeline.exports.parsing.containers import (
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_UNCOMPRESSED,
    CountingReader,
    Member,
    open_members,
    read_header,
)
from pipeline.exports.parsing.convert import ConvertContext, convert_batch, ints, times
from pipeline.exports.parsing.errors import BadRow, UnsupportedFile
from pipeline.exports.parsing.offsets import OffsetEvidence, OffsetHints, OffsetProof, resolve_offsets
from pipeline.storage.schemas import futures_orders

log = logging.getLogger(__name__)

EMPTY_SENTINEL = "No data matches the criteria."
# pyarrow's streaming CSV reader prefetches up to 32 blocks on a background thread, whatever the consumer does, so
# its memory grows with 33x the block size; 1 MiB blocks (~5000 rows) keep it small at no measurable cost in speed.
BLOCK_BYTES = 1 << 20


@dataclass
class ParseStats:
    """Filled while :func:`parse_export` runs (pass one in to read it afterwards)."""

    rows: int = 0
    data_lines: int = 0  # physical lines after each header, minus sentinel lines
    sentinels: int = 0
    members: list[str] = field(default_factory=list)
    container: str = ""
    utc_offset_minutes: int | None = None
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
    block_bytes: int = BLOCK_BYTES,
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED,
    max_ratio: float = DEFAULT_MAX_RATIO,
    ingested_at: datetime | None = None,
    stats: ParseStats | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream an export file as record batches in the futures_orders schema (rows in file order).

    ``utc_offset_minutes`` overrides the file's own labels (a proven offset); ``default_utc_offset_minutes`` is
    used only where the file says nothing; ``source_name`` is the name the file was served under, which may
    carry the ``(UTC+8)`` label. Batches hold about ``block_bytes`` of CSV each. Warnings go to
    ``stats.warnings`` and the log.
    """
    path = Path(path)
    if market not in futures_orders.MARKETS:
        raise ValueError(f"unknown market {market!r}; expected one of {sorted(futures_orders.MARKETS)}")
    stats = stats if stats is not None else ParseStats()
    ingested_ms = int((ingested_at or datetime.now(UTC)).timestamp() * 1000)
    budget = [max_uncompressed_bytes]
    with contextlib.ExitStack() as stack:
        members, stats.container = open_members(
            path, stack, max_bytes=max_uncompressed_bytes, max_ratio=max_ratio, budget=budget
        )
        for member in members:
            stats.members.append(member.name)
            hints = OffsetHints(utc_offset_minutes, default_utc_offset_minutes, source_name)
            yield from _parse_member(
                member,
                path,
                market=market,
                account=account,
                download_id=download_id,
                hints=hints,
                block_bytes=block_bytes,
                ingested_ms=ingested_ms,
                stats=stats,
                budget=budget,
            )
    if stats.sentinels and stats.rows:
        stats.warnings.append(f"{path}: '{EMPTY_SENTINEL}' line found in a file that also has {stats.rows} rows")
    for w in stats.warnings:
        log.warning("%s", w)


def _member_binding(member: Member, path: Path, budget: list[int]) -> tuple[Binding, list[str]] | None:
    """The header binding of a member (None for an empty member)."""
    before = budget[0]
    header = read_header(member, path)
    budget[0] = before  # the header peek is not counted twice
    if header is None:
        return None
    return bind_header(header, path=f"{path} ({member.name})")


def _csv_batches(
    stream: CountingReader,
    binding: Binding,
    path: Path,
    member: str,
    stats: ParseStats,
    *,
    block_bytes: int,
    columns: list[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """All-string CSV batches of a member after its header; sentinel lines are counted and skipped."""
    invalid: list[Any] = []

    def on_invalid(row: Any) -> str:
        if row.text.strip().strip('"').strip() == EMPTY_SENTINEL:
            stats.sentinels += 1
            return "skip"
        invalid.append(row)
        return "error"

    read_opts = pcsv.ReadOptions(column_names=binding.names, skip_rows=1, block_size=block_bytes)
    parse_opts = pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid)
    conv_opts = pcsv.ConvertOptions(
        column_types={n: pa.string() for n in binding.names},
        include_columns=columns or [],
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    try:
        yield from pcsv.open_csv(stream, read_options=read_opts, parse_options=parse_opts, convert_options=conv_opts)
    except pa.ArrowInvalid as exc:
        if stream.error is not None:  # e.g. the bomb guard fired on the prefetch thread before this parse error
            raise stream.error from None
        if invalid:
            row = invalid[0]
            raise BadRow(
                f"{path} ({member}): a line has {row.actual_columns} fields, the header has "
                f"{row.expected_columns}: {row.text[:200]!r}. The file may be damaged or not a plain export.",
                path=path,
            ) from None
        raise UnsupportedFile(f"{path} ({member}): cannot parse as CSV: {exc}", path=path) from exc
    except UnicodeDecodeError as exc:
        raise UnsupportedFile(f"{path} ({member}): not UTF-8 text", path=path) from exc


def _parse_member(
    member: Member,
    path: Path,
    *,
    market: str,
    account: str,
    download_id: str | None,
    hints: OffsetHints,
    block_bytes: int,
    ingested_ms: int,
    stats: ParseStats,
    budget: list[int],
) -> Iterator[pa.RecordBatch]:
    bound = _member_binding(member, path, budget)
    if bound is None:
        stats.warnings.append(f"{path}: {member.name!r} is empty (no header)")
        return
    binding, warnings = bound
    stats.warnings.extend(warnings)
    resolved = resolve_offsets(binding, member.name, path, hints, stats.warnings)
    stats.utc_offset_minutes = resolved.get("update_time")
    ctx = ConvertContext(path, member.name, market, account, download_id, ingested_ms, resolved, row_offset=0)
    sentinels_before = stats.sentinels
    stream = member.opener()
    with stream:
        for batch in _csv_batches(stream, binding, path, member.name, stats, block_bytes=block_bytes):
            if batch.num_rows == 0:
                continue
            out = convert_batch(batch, binding, ctx)
            ctx.row_offset += batch.num_rows
            stats.rows += batch.num_rows
            yield out
        stats.data_lines += max(0, stream.lines - 1 - (stats.sentinels - sentinels_before))


def infer_utc_offset(
    path: str | os.PathLike[str],
    reference_orders: Iterable[Mapping[str, Any]],
    *,
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED,
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
    for symbols, ids, local_ms in _local_times(path, max_uncompressed_bytes):
        proof.add(symbols, ids, local_ms)
    return proof.evidence(path)


def export_symbols(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_UNCOMPRESSED) -> list[str]:
    """The symbols an export file holds orders of: what a per-symbol REST call (PM ``allOrders`` needs ``symbol``)
    can be asked about."""
    seen: set[str] = set()
    for symbols, _, _ in _local_times(Path(path), max_bytes):
        seen.update(str(s) for s in symbols)
    return sorted(seen)


def _local_times(path: Path, max_bytes: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(symbols, order ids, local ``Time`` read as if it were UTC, in ms) per batch, reading only 3 columns."""
    stats = ParseStats()
    budget = [max_bytes]
    with contextlib.ExitStack() as stack:
        members, _ = open_members(path, stack, max_bytes=max_bytes, max_ratio=DEFAULT_MAX_RATIO, budget=budget)
        for member in members:
            bound = _member_binding(member, path, budget)
            if bound is None:
                continue
            binding = bound[0]
            names = [binding.columns[c] for c in ("symbol", "order_id", "time")]
            ctx = ConvertContext(path, member.name, "", "", None, 0, {"time": 0})
            with member.opener() as stream:
                for batch in _csv_batches(
                    stream, binding, path, member.name, stats, block_bytes=BLOCK_BYTES, columns=names
                ):
                    local = times(batch.column(names[2]), "time", names[2], ctx)
                    ids = ints(batch.column(names[1]), names[1], ctx)
                    ctx.row_offset += batch.num_rows
                    t = pa.table({"s": batch.column(names[0]), "i": ids, "t": pc.cast(local, pa.int64())}).drop_null()
                    yield (t["s"].to_numpy(), t["i"].to_numpy(), t["t"].to_numpy())


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

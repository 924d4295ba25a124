"""An export file -> its table's daily lake partitions (UTC date of ``update_time``): parse, then write the days.

The parse (:mod:`pipeline.exports.parsing`) streams batches into the generic day writer
(:mod:`pipeline.storage.day_writer`), which stages days while the parse goes on and publishes them only once the
whole file has parsed, so a bad value on the file's last line leaves the lake untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pipeline.exports.parsing import (
    BLOCK_BYTES,
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_UNCOMPRESSED,
    ParseStats,
    parse_export,
)
from pipeline.storage.day_writer import DaysWritten, write_days
from pipeline.storage.schemas import futures_orders


@dataclass
class ExportIngestResult:
    rows: int  # rows written to the lake (after dedupe / out-of-range drop)
    data_lines: int  # data lines in the file
    parsed_rows: int  # rows the CSV reader produced (equals data_lines when sound)
    partitions: dict[date, int]  # day -> rows written (empty days included)
    warnings: list[str]
    duplicates_dropped: int = 0
    outside_days_dropped: int = 0
    utc_offset_minutes: int | None = None
    paths: dict[date, Path] = field(default_factory=dict)


def write_export_partitions(
    path: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str],
    table: str,
    market: str,
    account: str,
    download_id: str | None,
    utc_offset_minutes: int | None = None,
    default_utc_offset_minutes: int | None = None,
    source_name: str | None = None,
    days: Iterable[date] | None = None,
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED,
    max_ratio: float = DEFAULT_MAX_RATIO,
    block_bytes: int = BLOCK_BYTES,
) -> ExportIngestResult:
    """Parse an export and replace its DAILY lake partitions (UTC date of update_time).

    Empty partitions are written for ``days`` without rows (coverage). Rows whose day is not in ``days`` are NOT
    written (that would replace a partition owned by another export) and are reported in the warnings. The offset
    arguments are :func:`pipeline.exports.parsing.parse_export`'s.
    """
    path = Path(path)
    if futures_orders.MARKETS.get(market) != table:
        raise ValueError(f"market {market!r} belongs to table {futures_orders.MARKETS.get(market)!r}, not {table!r}")
    stats = ParseStats()
    batches = parse_export(
        path,
        market=market,
        account=account,
        download_id=download_id,
        utc_offset_minutes=utc_offset_minutes,
        default_utc_offset_minutes=default_utc_offset_minutes,
        source_name=source_name,
        block_bytes=block_bytes,
        max_uncompressed_bytes=max_uncompressed_bytes,
        max_ratio=max_ratio,
        stats=stats,
    )
    written = write_days(batches, data_dir=data_dir, table=table, account=account, days=days)
    return _result(path, stats, written)


def _result(path: Path, stats: ParseStats, written: DaysWritten) -> ExportIngestResult:
    warnings = list(stats.warnings)
    outside = written.outside
    if outside:
        first = sorted(outside)[:5]
        warnings.append(
            f"{path.name}: {sum(outside.values())} row(s) on {len(outside)} day(s) outside the export's "
            f"range ({', '.join(d.isoformat() for d in first)}) were not written"
        )
    if written.duplicates_dropped:
        warnings.append(
            f"{path.name}: {written.duplicates_dropped} duplicate order row(s) dropped (kept greatest update_time)"
        )
    if stats.data_lines != stats.rows:
        warnings.append(
            f"{path.name}: {stats.data_lines} data lines but {stats.rows} rows parsed "
            "(quoted line breaks or blank lines?)"
        )
    parts = written.partitions
    return ExportIngestResult(
        rows=sum(r.rows for r in parts.values()),
        data_lines=stats.data_lines,
        parsed_rows=stats.rows,
        partitions={d: r.rows for d, r in parts.items()},
        warnings=warnings,
        duplicates_dropped=written.duplicates_dropped,
        outside_days_dropped=sum(outside.values()),
        utc_offset_minutes=stats.utc_offset_minutes,
        paths={d: r.path for d, r in parts.items()},
    )

"""An export file -> its table's daily lake partitions (UTC date of ``update_time``): parse, check, merge.

The parse (:mod:`pipeline.exports.parsing`) streams batches into the generic day writer
(:mod:`pipeline.storage.day_writer`), which stages days while the parse goes on, lets :mod:`pipeline.exports.verify`
refuse the file once it is read, and only then merges each day with its stored rows and publishes it: a bad value on
the file's last line, or a file cut short, leaves the lake untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.exports.parsing import (
    BLOCK_BYTES,
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_UNCOMPRESSED,
    ParseStats,
    parse_export,
)
from pipeline.exports.verify import ExportRange, check_parsed, days_outside, required_orders
from pipeline.storage.day_writer import DaysWritten, write_days
from pipeline.storage.schemas import futures_orders
from pipeline.times import day_end_ms, day_start_ms


@dataclass
class ExportIngestResult:
    rows: int  # rows of the file merged into the lake
    data_lines: int  # data lines in the file
    parsed_rows: int  # rows the CSV reader produced (equals data_lines, or the file is refused)
    partitions: dict[date, int]  # day -> the file's rows on that day (days outside the range included)
    warnings: list[str]
    duplicates_dropped: int = 0
    utc_offset_minutes: int | None = None
    offset_source: str = ""
    offset_note: str = ""
    outside_days: dict[date, int] = field(default_factory=dict)  # the file's rows on days outside its range
    paths: dict[date, Path] = field(default_factory=dict)


def write_export_partitions(
    path: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str],
    table: str,
    market: str,
    account: str,
    download_id: str | None,
    days: Iterable[date] | None = None,
    utc_offset_minutes: int | None = None,
    default_utc_offset_minutes: int | None = None,
    source_name: str | None = None,
    inference_note: str = "",
    symbol_assets: dict[str, tuple[str, str]] | None = None,
    transfer_verified: bool = False,
    accept_empty: bool = False,
    accept_last_line: bool = False,
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED,
    max_ratio: float = DEFAULT_MAX_RATIO,
    block_bytes: int = BLOCK_BYTES,
) -> ExportIngestResult:
    """Parse an export, check it (:mod:`pipeline.exports.verify`) and MERGE it into its daily partitions.

    ``days`` are the export's range. Every row goes to the UTC day of its ``update_time``, inside the range or
    not; each day keeps the rows it held and the newest version of each order. Days of the range the file has no
    row for get an empty partition only when they have none. A refused file changes nothing. The offset arguments are
    :func:`pipeline.exports.parsing.parse_export`'s.
    """
    path = Path(path)
    if futures_orders.MARKETS.get(market) != table:
        raise ValueError(f"market {market!r} belongs to table {futures_orders.MARKETS.get(market)!r}, not {table!r}")
    wanted = sorted(set(days)) if days is not None else []
    export_range = ExportRange(day_start_ms(wanted[0]), day_end_ms(wanted[-1])) if wanted else None
    required = required_orders(data_dir, table, account, export_range) if export_range else {}
    stats = ParseStats()
    ids: list[np.ndarray] = []

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in parse_export(
            path,
            market=market,
            account=account,
            download_id=download_id,
            utc_offset_minutes=utc_offset_minutes,
            default_utc_offset_minutes=default_utc_offset_minutes,
            source_name=source_name,
            inference_note=inference_note,
            symbol_assets=symbol_assets,
            block_bytes=block_bytes,
            max_uncompressed_bytes=max_uncompressed_bytes,
            max_ratio=max_ratio,
            stats=stats,
        ):
            ids.append(batch.column("order_id").to_numpy())
            yield batch

    def check(per_day: dict[date, int]) -> None:
        file_ids = np.concatenate(ids) if ids else np.array([], dtype=np.int64)
        ids.clear()  # not held through the merges
        check_parsed(
            path,
            stats,
            file_ids,
            required,
            transfer_verified=transfer_verified,
            accept_empty=accept_empty,
            accept_last_line=accept_last_line,
        )

    written = write_days(batches(), data_dir=data_dir, table=table, account=account, days=wanted, before_publish=check)
    return _result(path, stats, written, export_range, wanted)


def _result(
    path: Path, stats: ParseStats, written: DaysWritten, rng: ExportRange | None, days: list[date]
) -> ExportIngestResult:
    warnings = list(stats.warnings)
    outside = days_outside(written.rows_per_day, rng) if rng else {}
    if outside:
        first = sorted(outside)[:3]
        warnings.append(
            f"{path.name}: {sum(outside.values())} row(s) fall on {len(outside)} day(s) outside the export's range "
            f"({', '.join(d.isoformat() for d in first)}{' ...' if len(outside) > 3 else ''}); merged into those days"
        )
    if written.duplicates_dropped:
        warnings.append(
            f"{path.name}: {written.duplicates_dropped} repeated order row(s) on one day; kept the newest version"
        )
    if stats.data_lines != stats.rows:
        warnings.append(f"{path.name}: {stats.data_lines} data lines but {stats.rows} rows (quoted line breaks)")
    if "differ" in stats.offset_note or "inference" in stats.offset_note:
        warnings.append(f"{path.name}: {stats.offset_note}")
    return ExportIngestResult(
        rows=stats.rows,
        data_lines=stats.data_lines,
        parsed_rows=stats.rows,
        partitions=dict(sorted({**dict.fromkeys(days, 0), **written.rows_per_day}.items())),
        warnings=warnings,
        duplicates_dropped=written.duplicates_dropped,
        utc_offset_minutes=stats.utc_offset_minutes,
        offset_source=stats.offset_source,
        offset_note=stats.offset_note,
        outside_days=outside,
        paths={d: r.path for d, r in written.partitions.items()},
    )

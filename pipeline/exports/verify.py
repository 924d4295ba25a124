"""Whether a parsed export file may touch the lake: refusals decided after the parse and before anything is written.

Each check uses a signal independent of the CSV parser: the lines the byte stream counted, the empty-export
sentinel, whether the last line ended and, if not, whether its last field can be a cut value, and the orders the
lake already holds that any export of the range must list (see docs/design/exports.md §Refusals). A refused file
stays under ``raw/``; ``orderlake exports reingest ID`` parses it again after a fix, without a new download id.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.exports.parsing import EMPTY_SENTINEL, ParseStats
from pipeline.exports.parsing.errors import ExportFileError
from pipeline.storage import lake
from pipeline.times import day_of, days_between, fmt_ms

# Statuses after which an order never changes again (docs/binance-facts.md §Futures order enums).
FINAL_STATUSES = ("FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED")
# Zero-fill cancels and expiries may be left out of an export as REST leaves them out after 3 days: never required.
MAYBE_OMITTED = ("CANCELED", "EXPIRED", "EXPIRED_IN_MATCH")
_COLUMNS = ["order_id", "symbol", "status", "executed_qty", "time", "update_time"]


class RefusedExport(ExportFileError):
    """The file parsed, but it cannot be the whole export (empty, cut short, missing known orders): not ingested."""


@dataclass(frozen=True)
class ExportRange:
    start_ms: int
    end_ms: int


def required_orders(
    data_dir: str | os.PathLike[str], table: str, account: str, rng: ExportRange
) -> dict[int, tuple[str, int]]:
    """order_id -> (status, update_time ms) of the lake's orders that ANY export of ``rng`` must list, whichever rule
    it selects by (creation time, last update, anything between): final orders created and last updated inside it,
    zero-fill cancels and expiries excepted."""
    out: dict[int, tuple[str, int]] = {}
    for day in days_between(day_of(rng.start_ms), day_of(rng.end_ms)):
        stored = lake.open_partition(data_dir, table, account, day)
        if stored is None:
            continue
        rows = stored.read(columns=_COLUMNS)
        t, u = pc.cast(rows["time"], pa.int64()), pc.cast(rows["update_time"], pa.int64())
        zero = pc.equal(rows["executed_qty"], pa.scalar(0, rows.schema.field("executed_qty").type))
        keep = pc.and_(
            pc.and_(pc.is_in(rows["status"], pa.array(FINAL_STATUSES)), pc.greater_equal(t, rng.start_ms)),
            pc.and_(
                pc.less_equal(u, rng.end_ms),
                pc.invert(pc.and_(zero, pc.is_in(rows["status"], pa.array(MAYBE_OMITTED)))),
            ),
        )
        hit = rows.filter(keep)
        for oid, status, upd in zip(
            hit["order_id"].to_pylist(),
            hit["status"].to_pylist(),
            pc.cast(hit["update_time"], pa.int64()).to_pylist(),
            strict=True,
        ):
            out[oid] = (status, upd)
    return out


def check_parsed(
    path: Path,
    stats: ParseStats,
    file_ids: np.ndarray,
    required: dict[int, tuple[str, int]],
    *,
    transfer_verified: bool,
    accept_empty: bool,
    accept_last_line: bool = False,
) -> None:
    """Raise :class:`RefusedExport` naming the first reason the parsed file cannot be the whole export."""
    again = (
        "Nothing was written; the file stays under raw/. Check the export on the Binance website; after a fix, "
        "`orderlake exports reingest ID` parses it again (no new download id)."
    )
    if stats.rows == 0 and stats.sentinels == 0 and not accept_empty:
        raise RefusedExport(
            f"{path}: the export has a header but neither data rows nor the line '{EMPTY_SENTINEL}', so it may be "
            f"cut short. {again} If the website shows no orders in the range, accept it as empty: "
            "`orderlake exports reingest ID --accept-empty`.",
            path=path,
        )
    if stats.rows > stats.data_lines or (stats.rows != stats.data_lines and not stats.quoted):
        raise RefusedExport(
            f"{path}: {stats.data_lines} data lines but {stats.rows} rows parsed (a quoted line break, a blank line "
            f"or a damaged line). {again}",
            path=path,
        )
    if stats.unterminated and stats.container == "csv" and not transfer_verified:
        raise RefusedExport(
            f"{path}: the last line of {stats.unterminated[0]!r} does not end, and neither a container checksum nor "
            f"a Content-Length proves the file whole, so it may be cut inside a row. {again}",
            path=path,
        )
    if stats.cut_rows and not accept_last_line:
        raise RefusedExport(
            f"{path}: no line break ends the file and its last row may be cut short: {stats.cut_rows[0]}. Whether "
            "Binance ends its files with a line break is not known, and without one a row cut inside its last field "
            f"looks whole. {again} If the website's export shows that last order as the file has it, accept the file: "
            "`orderlake exports reingest ID --accept-last-line`.",
            path=path,
        )
    if required:
        missing = np.setdiff1d(np.fromiter(required, dtype=np.int64, count=len(required)), file_ids)
        if len(missing):
            oid = int(missing[0])
            status, upd = required[oid]
            raise RefusedExport(
                f"{path}: the file lacks {len(missing)} order(s) the lake already holds as final inside the export's "
                f"range, which any export of it must list (e.g. order {oid}, {status}, last updated "
                f"{fmt_ms(upd)}); it is cut short or incomplete. {again}",
                path=path,
            )


def days_outside(per_day: dict[date, int], rng: ExportRange) -> dict[date, int]:
    """Rows per day outside the export's range (an order created inside and updated after it, or the reverse)."""
    first, last = day_of(rng.start_ms), day_of(rng.end_ms)
    return {d: n for d, n in per_day.items() if d < first or d > last}

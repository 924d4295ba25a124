"""The CSV reader of an export member: all-string Arrow batches, streamed or one block of whole lines at a time.

Both readers share their options and their errors, so a block parsed on its own reads exactly as the same lines do
in the stream: the empty-export sentinel line is counted and skipped, a line with the wrong number of fields is a
:class:`BadRow`, anything else Arrow cannot read an :class:`UnsupportedFile`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.csv as pcsv

from pipeline.exports.parsing.binding import Binding
from pipeline.exports.parsing.errors import BadRow, ExportFileError, UnsupportedFile

EMPTY_SENTINEL = "No data matches the criteria."


class Counts(Protocol):
    sentinels: int  # empty-export sentinel lines skipped


class _Invalid:
    """pyarrow's invalid-row handler: sentinel lines are counted and skipped, other bad lines kept for the error."""

    def __init__(self) -> None:
        self.sentinels = 0
        self.rows: list[Any] = []

    def __call__(self, row: Any) -> str:
        if row.text.strip().strip('"').strip() == EMPTY_SENTINEL:
            self.sentinels += 1
            return "skip"
        self.rows.append(row)
        return "error"


def _options(
    binding: Binding, invalid: _Invalid, *, block_bytes: int, skip_header: bool, columns: list[str] | None
) -> dict[str, Any]:
    return {
        "read_options": pcsv.ReadOptions(
            column_names=binding.names, skip_rows=1 if skip_header else 0, block_size=block_bytes
        ),
        "parse_options": pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=invalid),
        "convert_options": pcsv.ConvertOptions(
            column_types={n: pa.string() for n in binding.names},
            include_columns=columns or [],
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    }


def _error(
    exc: Exception, invalid: _Invalid, path: Path, member: str, stream_error: ExportFileError | None
) -> ExportFileError:
    """The error that names what failed: the stream's own (e.g. the bomb guard fired on the prefetch thread before
    this parse error), a line of the wrong width, or the reader's message."""
    if isinstance(exc, UnicodeDecodeError):
        return UnsupportedFile(f"{path} ({member}): not UTF-8 text", path=path)
    if stream_error is not None:
        return stream_error
    if invalid.rows:
        row = invalid.rows[0]
        return BadRow(
            f"{path} ({member}): a line has {row.actual_columns} fields, the header has "
            f"{row.expected_columns}: {row.text[:200]!r}. The file may be damaged or not a plain export.",
            path=path,
        )
    return UnsupportedFile(f"{path} ({member}): cannot parse as CSV: {exc}", path=path)


def csv_batches(
    stream: Any,
    binding: Binding,
    path: Path,
    member: str,
    counts: Counts,
    *,
    block_bytes: int,
    skip_header: bool = True,
    columns: list[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """All-string CSV batches of a member stream (after its header unless ``skip_header`` is off); sentinel lines
    are counted in ``counts`` and skipped."""
    invalid = _Invalid()
    opts = _options(binding, invalid, block_bytes=block_bytes, skip_header=skip_header, columns=columns)
    try:
        for batch in pcsv.open_csv(stream, **opts):
            counts.sentinels += invalid.sentinels
            invalid.sentinels = 0
            yield batch
        counts.sentinels += invalid.sentinels
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _error(exc, invalid, path, member, getattr(stream, "error", None)) from None


def block_batch(data: Any, binding: Binding, path: Path, member: str) -> tuple[pa.RecordBatch | None, int]:
    """One block of whole lines (bytes-like, no header) as one all-string batch (None: no row), and how many
    sentinel lines it skipped. Parsed on the calling thread."""
    invalid = _Invalid()
    size = max(len(data), 1)
    opts = _options(binding, invalid, block_bytes=size + 1, skip_header=False, columns=None)
    opts["read_options"].use_threads = False
    opts["parse_options"].newlines_in_values = False  # the block has no quote: the same rows, a cheaper chunker
    try:
        table = pcsv.read_csv(pa.BufferReader(pa.py_buffer(data)), **opts)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _error(exc, invalid, path, member, None) from None
    if table.num_rows == 0:
        return None, invalid.sentinels
    batches = table.combine_chunks().to_batches()
    return batches[0], invalid.sentinels

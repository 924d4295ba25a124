"""Binance futures ORDER-HISTORY export files -> Arrow batches in the futures_orders schema.

The file format is undocumented, so the reader is defensive and loud. One module per concern:
:mod:`~.containers` (ZIP/gzip/plain sniffing, bounded member streams, the decompression-bomb guard),
:mod:`~.binding` (header names -> schema columns), :mod:`~.convert` (exact values), :mod:`~.offsets` (the UTC offset
of the local times), :mod:`~.csv_read` (the CSV reader), :mod:`~.blocks` (blocks parsed on a thread pool),
:mod:`~.stream` (the streaming parse) and :mod:`~.errors`. Writing the parsed rows to the lake is
:mod:`pipeline.exports.ingest`.
"""

from pipeline.exports.parsing.binding import ALIASES, REQUIRED, Binding, bind_header
from pipeline.exports.parsing.containers import DEFAULT_MAX_RATIO, DEFAULT_MAX_UNCOMPRESSED
from pipeline.exports.parsing.convert import SOURCE, convert_batch
from pipeline.exports.parsing.errors import (
    BadRow,
    BadValue,
    ExportFileError,
    MissingColumn,
    TruncatedFile,
    UnknownTimezone,
    UnsupportedFile,
    ZipBombRefused,
)
from pipeline.exports.parsing.offsets import OffsetEvidence, parse_offset
from pipeline.exports.parsing.stream import (
    BLOCK_BYTES,
    EMPTY_SENTINEL,
    FileTimes,
    ParseStats,
    count_data_lines,
    file_times,
    infer_utc_offset,
    parse_export,
)

__all__ = [
    "ALIASES",
    "BLOCK_BYTES",
    "DEFAULT_MAX_RATIO",
    "DEFAULT_MAX_UNCOMPRESSED",
    "EMPTY_SENTINEL",
    "REQUIRED",
    "SOURCE",
    "BadRow",
    "BadValue",
    "Binding",
    "ExportFileError",
    "FileTimes",
    "MissingColumn",
    "OffsetEvidence",
    "ParseStats",
    "TruncatedFile",
    "UnknownTimezone",
    "UnsupportedFile",
    "ZipBombRefused",
    "bind_header",
    "convert_batch",
    "count_data_lines",
    "file_times",
    "infer_utc_offset",
    "parse_export",
    "parse_offset",
]

"""Errors of the export-file parser: the file cannot be ingested as it is.

Each is a :class:`pipeline.errors.DataError` (retrying the same file cannot help), and each message names the file,
what failed and what to do. The raw file is kept, so a fix never costs a new download id.
"""

from __future__ import annotations

import os
from typing import Any

from pipeline.errors import DataError


class ExportFileError(DataError):
    """An export file that cannot be ingested as it is. The message names the file and what to do."""

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None) -> None:
        self.path = str(path) if path is not None else None
        super().__init__(message)


class TruncatedFile(ExportFileError):
    """Bad ZIP / gzip: truncated download, CRC mismatch, unexpected end of stream."""


class ZipBombRefused(ExportFileError):
    """Decompressed size (declared or actual) above the limit, or an implausible compression ratio."""


class UnsupportedFile(ExportFileError):
    """Not an order-history export: no CSV member, encrypted ZIP, not UTF-8, no header..."""


class MissingColumn(ExportFileError):
    """A required column is not in the header."""

    def __init__(self, message: str, *, path: Any = None, column: str = "") -> None:
        self.column = column
        super().__init__(message, path=path)


class BadRow(ExportFileError):
    """A line that does not have the header's number of fields."""


class BadValue(ExportFileError):
    """A value that cannot be converted exactly (number, id, time, boolean)."""

    def __init__(
        self, message: str, *, path: Any = None, column: str = "", line: int | None = None, value: object = None
    ) -> None:
        self.column, self.line, self.value = column, line, value
        super().__init__(message, path=path)


class UnknownTimezone(ExportFileError):
    """Local times with no offset in the file name, header or arguments."""

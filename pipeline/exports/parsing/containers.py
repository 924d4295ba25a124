"""The byte layer of an export file: container sniffing, member streams, and the decompression-bomb guard.

The container is told by its first bytes, never by its name: ZIP (``PK\\x03\\x04``; one CSV member, or
``-partN-of-M`` members read in order), gzip (``\\x1f\\x8b``, whose header may keep the original file name), else
plain CSV; a deflated ZIP member is inflated by :mod:`~.inflate` (ISA-L). A ZIP bomb is refused from its declared
sizes before anything is extracted, and every stream is also counted while it is read, because declared sizes can lie.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from pipeline.exports.parsing.errors import ExportFileError, TruncatedFile, UnsupportedFile, ZipBombRefused
from pipeline.exports.parsing.inflate import DeflatedMember, can_inflate

DEFAULT_MAX_UNCOMPRESSED = 4 * 1024**3  # 4 GiB: ~20M order rows; far above any real order export
DEFAULT_MAX_RATIO = 200  # CSV deflates ~5-20x; a zero-filled bomb ~1000x
RATIO_FLOOR_BYTES = 16 * 1024**2  # the ratio guard ignores small files (tiny files compress oddly)
HEADER_PEEK_BYTES = 64 * 1024  # a header line longer than this is no Binance export
TAIL_BYTES = 16 * 1024  # the end of a stream kept to read its last line again (a row is a few hundred bytes)
_PART = re.compile(r"-part(\d+)-of(\d+)", re.IGNORECASE)


class CountingReader(io.RawIOBase):
    """Decompressed stream with a hard size limit, a ratio guard, newline counting and typed errors."""

    def __init__(
        self,
        raw: BinaryIO,
        *,
        path: Any,
        member: str,
        limit: int,
        compressed_size: int | None,
        max_ratio: float,
        budget: list[int],
    ) -> None:
        self._raw, self._path, self._member = raw, path, member
        self._limit, self._csize, self._ratio = limit, compressed_size, max_ratio
        self._budget = budget  # shared across members: [bytes still allowed]
        self.count = 0
        self.newlines = 0
        self.quotes = 0  # '"' bytes: a quoted value may hold a line break, so lines and rows may then differ
        self.last_byte = b""
        self.tail = b""  # the last TAIL_BYTES read: the last line, to check that it is a whole row
        self.error: ExportFileError | None = None  # what read() raised: pyarrow may report a follow-up error first

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        try:
            return self._read(n)
        except ExportFileError as exc:
            self.error = exc
            raise

    def _read(self, n: int) -> bytes:
        try:
            data = self._raw.read(n if n is not None and n >= 0 else 1 << 20)
        except (zipfile.BadZipFile, gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise TruncatedFile(
                f"{self._path}: member {self._member!r} is damaged ({exc}); the download is probably "
                "truncated or corrupt. Delete the raw file and download it again (the link can be re-fetched "
                "while it has not expired; it costs no new download id).",
                path=self._path,
            ) from exc
        self.count += len(data)
        self._budget[0] -= len(data)
        if data:  # numpy counts far faster than bytes.count, which holds the GIL the parse needs
            view = np.frombuffer(data, dtype=np.uint8)
            self.newlines += int(np.count_nonzero(view == 0x0A))
            self.quotes += int(np.count_nonzero(view == 0x22))
            self.last_byte = data[-1:]
            self.tail = data[-TAIL_BYTES:] if len(data) >= TAIL_BYTES else (self.tail + data)[-TAIL_BYTES:]
        if self._budget[0] < 0:
            raise ZipBombRefused(
                f"{self._path}: decompressed data exceeds the limit of {self._limit:,} bytes "
                f"(at {self._member!r}); refused as a possible decompression bomb. If the export is genuinely this "
                "large, raise max_uncompressed_bytes.",
                path=self._path,
            )
        if self._csize and self.count > RATIO_FLOOR_BYTES and self.count > self._ratio * self._csize:
            raise ZipBombRefused(
                f"{self._path}: {self._member!r} expands more than {self._ratio:.0f}x its compressed size; "
                "refused as a possible decompression bomb (raise max_ratio if the file is genuine).",
                path=self._path,
            )
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._raw.close()
        super().close()

    @property
    def lines(self) -> int:
        return self.newlines + (1 if self.count and self.last_byte not in (b"\n", b"") else 0)


@dataclass
class Member:
    """One CSV stream of an export file; ``opener`` may be called again to read it from the start."""

    name: str  # member/file name: for messages and the (UTC..) offset
    opener: Callable[[], CountingReader]


def _gzip_name(path: Path) -> str | None:
    """The original file name stored in a gzip header (FNAME), if any: it may carry the (UTC+8) label."""
    with open(path, "rb") as fh:
        head = fh.read(64 * 1024)
    if len(head) < 10 or not head[3] & 0x08:
        return None
    pos = 10
    if head[3] & 0x04:  # FEXTRA
        pos += 2 + int.from_bytes(head[10:12], "little")
    end = head.find(b"\0", pos)
    return head[pos:end].decode("latin-1") if end > pos else None


def _zip_members(
    path: Path, stack: contextlib.ExitStack, max_bytes: int, max_ratio: float, budget: list[int]
) -> list[Member]:
    try:
        zf = stack.enter_context(zipfile.ZipFile(path))
        infos = zf.infolist()
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise TruncatedFile(
            f"{path}: not a readable ZIP ({exc}); the download is probably truncated. Delete the raw file and "
            "download it again.",
            path=path,
        ) from exc
    csvs = [
        i
        for i in infos
        if not i.is_dir() and i.filename.lower().endswith(".csv") and not i.filename.startswith("__MACOSX/")
    ]
    if not csvs:
        raise UnsupportedFile(
            f"{path}: the ZIP holds no CSV file (members: {[i.filename for i in infos][:10]})", path=path
        )
    _check_declared_sizes(path, csvs, max_bytes, max_ratio)
    csvs = _in_part_order(path, csvs)

    def opener(info: zipfile.ZipInfo) -> Callable[[], CountingReader]:
        def _open() -> CountingReader:
            return CountingReader(
                DeflatedMember(str(path), info) if can_inflate(info) else zf.open(info),
                path=path,
                member=info.filename,
                limit=max_bytes,
                compressed_size=info.compress_size,
                max_ratio=max_ratio,
                budget=budget,
            )

        return _open

    return [Member(i.filename, opener(i)) for i in csvs]


def _check_declared_sizes(path: Path, csvs: list[zipfile.ZipInfo], max_bytes: int, max_ratio: float) -> None:
    """Refuse a bomb (or an encrypted member) from the ZIP's directory, before anything is extracted."""
    declared = sum(i.file_size for i in csvs)
    if declared > max_bytes:
        raise ZipBombRefused(
            f"{path}: the ZIP declares {declared:,} bytes uncompressed, above the limit of {max_bytes:,}; refused "
            "before extracting (possible decompression bomb). Raise max_uncompressed_bytes if it is genuine.",
            path=path,
        )
    for i in csvs:
        if i.flag_bits & 0x1:
            raise UnsupportedFile(f"{path}: member {i.filename!r} is encrypted", path=path)
        if i.file_size > RATIO_FLOOR_BYTES and i.file_size > max_ratio * max(i.compress_size, 1):
            raise ZipBombRefused(
                f"{path}: member {i.filename!r} declares {i.file_size:,} bytes from {i.compress_size:,} compressed "
                f"(more than {max_ratio:.0f}x); refused before extracting as a possible decompression bomb.",
                path=path,
            )


def _in_part_order(path: Path, csvs: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
    """``-partN-of-M`` members by N (all parts must be there), any other members by name."""
    parts = [_PART.search(i.filename) for i in csvs]
    if not (all(parts) and len(csvs) > 1):
        return sorted(csvs, key=lambda i: i.filename)
    ordered = [i for _, i in sorted(zip(parts, csvs, strict=True), key=lambda t: int(t[0].group(1)))]  # type: ignore[union-attr]
    total = int(parts[0].group(2))  # type: ignore[union-attr]
    got = sorted(int(p.group(1)) for p in parts)  # type: ignore[union-attr]
    if got != list(range(1, total + 1)):
        raise UnsupportedFile(f"{path}: multi-part export is incomplete: parts {got} of {total}", path=path)
    return ordered


def open_members(
    path: Path, stack: contextlib.ExitStack, *, max_bytes: int, max_ratio: float, budget: list[int]
) -> tuple[list[Member], str]:
    """The CSV streams of a file and its container kind ("zip", "gzip", "csv").

    ``budget`` (``[bytes still allowed]``) is shared by every stream of the file; ``stack`` keeps the ZIP open.
    """
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except FileNotFoundError:
        raise ExportFileError(f"{path}: export file not found", path=path) from None
    if magic.startswith(b"PK\x03\x04") or magic.startswith(b"PK\x05\x06"):
        return _zip_members(path, stack, max_bytes, max_ratio, budget), "zip"
    size = path.stat().st_size
    if magic.startswith(b"\x1f\x8b"):
        name = _gzip_name(path) or path.name

        def _open_gz() -> CountingReader:
            return CountingReader(
                gzip.open(path, "rb"),
                path=path,
                member=name,
                limit=max_bytes,
                compressed_size=size,
                max_ratio=max_ratio,
                budget=budget,
            )

        return [Member(name, _open_gz)], "gzip"

    def _open_plain() -> CountingReader:
        return CountingReader(
            open(path, "rb"),
            path=path,
            member=path.name,
            limit=max(max_bytes, size),
            compressed_size=None,
            max_ratio=max_ratio,
            budget=[max(max_bytes, size) + 1],
        )

    return [Member(path.name, _open_plain)], "csv"


def read_header(member: Member, path: Path) -> list[str] | None:
    """The header fields of a member (None for an empty member)."""
    limit = HEADER_PEEK_BYTES
    with member.opener() as stream:
        buf = b""
        while b"\n" not in buf and len(buf) <= limit:
            chunk = stream.read(limit)
            if not chunk:
                break
            buf += chunk
    if not buf.strip():
        return None
    if b"\n" not in buf[:limit] and len(buf) > limit:
        raise UnsupportedFile(
            f"{path}: {member.name!r} has no header line in its first {limit:,} bytes; not a Binance CSV export",
            path=path,
        )
    line = buf.split(b"\n", 1)[0]
    if buf.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in line:
        raise UnsupportedFile(
            f"{path}: {member.name!r} is UTF-16 text, not the UTF-8 of Binance's exports; not parsed. Re-save it as "
            "UTF-8 only if you produced it yourself; a file from Binance should be downloaded again.",
            path=path,
        )
    try:
        text = line.decode("utf-8-sig").rstrip("\r")
        fields = next(csv.reader([text]))
    except UnicodeDecodeError as exc:
        raise UnsupportedFile(
            f"{path}: {member.name!r} is not UTF-8 text (byte {line[exc.start : exc.start + 1]!r} at {exc.start}; "
            "GBK or Latin-1?); Binance's exports are UTF-8, so this is not parsed.",
            path=path,
        ) from exc
    except csv.Error as exc:
        raise UnsupportedFile(
            f"{path}: {member.name!r} does not start with a CSV header ({exc}); not a Binance CSV export", path=path
        ) from exc
    if len(fields) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if sep in text:
                raise UnsupportedFile(
                    f"{path}: {member.name!r} separates its header with {name} ({text[:80]!r}); Binance's exports "
                    "use commas, so the file is not parsed (a spreadsheet may have re-saved it).",
                    path=path,
                )
    return fields

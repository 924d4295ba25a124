"""A deflated ZIP member read with ISA-L's inflate (``isal``), which is several times faster than zlib's.

Decompression runs on the CSV reader's prefetch thread, beside the parse, encoding and writing of the same ingest on
the same cores, so its CPU time is the ingest's too (docs/design/exports.md §Speed). The reader checks what
``zipfile`` checks: the local header's signature, the inflated size and the CRC-32 from the central directory; a
damaged or cut member raises :class:`zipfile.BadZipFile`, which the caller turns into its own error. Output is at
most ``n`` bytes a read and at most :data:`OUT_BYTES` per inflate call, so a bomb is counted as it grows.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections import deque
from typing import BinaryIO

from isal import isal_zlib

IN_BYTES = 64 * 1024  # compressed bytes read at a time
OUT_BYTES = 1 << 20  # inflated bytes per call at most
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., file name length, extra field length
_SIGNATURE = b"PK\x03\x04"


def can_inflate(info: zipfile.ZipInfo) -> bool:
    """Whether :class:`DeflatedMember` reads this member (deflated, not encrypted); others go to ``zipfile``."""
    return info.compress_type == zipfile.ZIP_DEFLATED and not info.flag_bits & 0x1


class DeflatedMember(io.RawIOBase):
    """The inflated bytes of one deflated member of the ZIP file at ``path``."""

    def __init__(self, path: str, info: zipfile.ZipInfo) -> None:
        self._info = info
        self._fh: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self._fh.seek(info.header_offset)
            head = self._fh.read(_LOCAL_HEADER.size)
            if len(head) < _LOCAL_HEADER.size or head[:4] != _SIGNATURE:
                raise zipfile.BadZipFile(f"bad local file header of {info.filename!r}")
            _, name_len, extra_len = _LOCAL_HEADER.unpack(head)
            self._fh.seek(name_len + extra_len, io.SEEK_CUR)
        except BaseException:
            self._fh.close()
            raise
        self._left = info.compress_size
        self._inflate = isal_zlib.decompressobj(-15)  # raw deflate, as in a ZIP
        self._chunks: deque[bytes] = deque()  # inflated, not yet read; the first from ``_at`` on
        self._at = 0
        self._buffered = 0
        self._size = 0
        self._crc = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        want = n if n is not None and n >= 0 else OUT_BYTES
        while self._buffered < want and not self._done:
            self._fill()
        parts: list[memoryview] = []
        left = min(want, self._buffered)
        self._buffered -= left
        while left:
            head = memoryview(self._chunks[0])[self._at :]
            take = min(left, len(head))
            parts.append(head[:take])
            left -= take
            if take == len(head):
                self._chunks.popleft()
                self._at = 0
            else:
                self._at += take
        return b"".join(parts)  # the one copy of the inflated bytes

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._fh.close()
        super().close()

    def _fill(self) -> None:
        data = self._inflate.unconsumed_tail
        if not data:
            data = self._fh.read(min(self._left, IN_BYTES))
            self._left -= len(data)
            if not data:  # the member's compressed bytes are all read: its size and CRC tell a cut stream
                self._finish()
                return
        try:
            out = self._inflate.decompress(data, OUT_BYTES)
        except isal_zlib.error as exc:
            raise zipfile.BadZipFile(f"{self._info.filename!r}: {exc}") from None
        self._size += len(out)
        self._crc = isal_zlib.crc32(out, self._crc)
        if out:
            self._chunks.append(out)
            self._buffered += len(out)
        if self._inflate.eof:
            self._finish()

    def _finish(self) -> None:
        self._done = True
        if self._size != self._info.file_size:
            raise zipfile.BadZipFile(
                f"{self._info.filename!r}: inflated to {self._size} bytes, the ZIP says {self._info.file_size}"
            )
        if self._crc != self._info.CRC:
            raise zipfile.BadZipFile(f"Bad CRC-32 for file {self._info.filename!r}")

"""A member's rows parsed and converted on a small thread pool, handed out in file order.

The inflated stream is cut into blocks of whole lines where a cut is certain to be a row boundary for the CSV
reader: in text without a quote character, every line feed ends a row (a lone carriage return ends one too, inside
a block, as it does in the stream). Each
block is parsed (:func:`~.csv_read.block_batch`) and converted on a pool thread (Arrow and numpy release the GIL)
while the caller reads on. From the first stretch that does not qualify (a quoted value may hold a line break) to
the end of the member, the serial reader takes over, so a file reads to the same rows either way. A block's result
is accepted in file order only if it used the time formats the serial parse would have (the first value of a column
decides its format); otherwise, or when it failed, the block is converted again in order, which gives the serial
parse's result or error, line numbers included.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.exports.parsing.binding import Binding
from pipeline.exports.parsing.convert import ConvertContext
from pipeline.exports.parsing.csv_read import Counts, block_batch, csv_batches
from pipeline.exports.parsing.errors import ExportFileError

# Threads that parse and convert blocks, and how many blocks may be read ahead of the caller (each holds its bytes
# and its rows until the caller takes them).
PARSE_THREADS = 2
AHEAD = PARSE_THREADS
# A block holds this many batches (of the caller's batch size): fewer, larger blocks cost less Python per row, while
# the caller still gets batches of the size it asked for.
BATCHES_PER_BLOCK = 2

Convert = Callable[[pa.RecordBatch, Binding, ConvertContext], pa.RecordBatch]


@dataclass(frozen=True)
class Rest:
    """Where cutting stopped: the bytes read but not handed out, for the serial reader (with the rest of the
    stream); ``header``: they still start with the header line."""

    head: bytes
    header: bool


def _plain_header(line: bytes) -> bool:
    """A header line the serial reader also skips as one row: not blank, no carriage return before its end."""
    text = line.rstrip(b"\r\n")
    return bool(text.strip()) and b"\r" not in text


def line_blocks(stream: Any, block_bytes: int) -> Iterator[memoryview | Rest]:
    """The data lines of a member stream (its header line dropped) in blocks of about ``block_bytes``, each ending
    at a line feed (the last may not); a :class:`Rest` ends the sequence where a cut would not be certain."""
    pending = b""
    header = True
    while chunk := stream.read(block_bytes):
        data = pending + chunk if pending else chunk
        cut = data.rfind(b"\n") + 1
        if not cut:
            if len(data) > block_bytes:  # a line longer than a block: the serial reader decides
                yield Rest(data, header)
                return
            pending = data
            continue
        start = data.find(b"\n") + 1 if header else 0
        if data.find(b'"', 0, cut) >= 0 or (header and not _plain_header(data[:start])):
            yield Rest(data, header)
            return
        header = False
        if cut > start:
            yield memoryview(data)[start:cut]
        pending = data[cut:]
    if pending:
        if header or b'"' in pending:
            yield Rest(pending, header)
        else:
            yield memoryview(pending)


class _Replay(io.RawIOBase):
    """``head``, then the rest of ``stream`` (whose ``error`` it passes on)."""

    def __init__(self, head: bytes, stream: Any) -> None:
        self._head, self._stream = head, stream

    @property
    def error(self) -> ExportFileError | None:
        return getattr(self._stream, "error", None)

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if self._head:
            size = len(self._head) if n is None or n < 0 else n
            out, self._head = self._head[:size], self._head[size:]
            return out
        return self._stream.read(n)

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


@dataclass
class _Done:
    """A block as a pool thread left it."""

    strings: pa.RecordBatch | None = None
    out: pa.RecordBatch | None = None
    sentinels: int = 0
    ctx: ConvertContext | None = None
    error: BaseException | None = None


@dataclass
class BlockParse:
    """Everything one member's blocks share."""

    binding: Binding
    path: Path
    member: str
    ctx: ConvertContext  # the file order's context: its time formats decide
    convert: Convert
    counts: Counts

    def work(self, data: memoryview) -> _Done:
        """Parse and convert one block (on a pool thread), with a private context that has no row offset."""
        try:
            strings, sentinels = block_batch(data, self.binding, self.path, self.member)
        except ExportFileError as exc:
            return _Done(error=exc)
        if strings is None:
            return _Done(sentinels=sentinels)
        local = replace(self.ctx, row_offset=0, time_format=dict(self.ctx.time_format))
        try:
            return _Done(strings, self.convert(strings, self.binding, local), sentinels, local)
        except Exception as exc:  # converted again in file order, which raises it with its line
            return _Done(strings, None, sentinels, local, exc)

    def accept(self, done: _Done) -> pa.RecordBatch | None:
        """A block's rows in file order: the pool's result when it is the serial parse's, else converted again."""
        self.counts.sentinels += done.sentinels
        if done.strings is None:
            if done.error is not None:
                raise done.error
            return None
        ctx = self.ctx
        if done.out is not None and done.ctx is not None:
            formats = done.ctx.time_format
            if all(ctx.time_format.get(col, fmt) == fmt for col, fmt in formats.items()):
                ctx.time_format.update(formats)
                ctx.local_times = ctx.local_times or done.ctx.local_times
                return done.out
        return self.convert(done.strings, self.binding, ctx)

    def batches(self, stream: Any, block_bytes: int) -> Iterator[pa.RecordBatch]:
        """Converted batches of the member in file order; the caller advances ``ctx.row_offset`` by each."""
        pool = ThreadPoolExecutor(max_workers=PARSE_THREADS, thread_name_prefix="csv-block")
        queued: deque[Future[_Done]] = deque()
        rest: Rest | None = None
        try:
            for block in line_blocks(stream, block_bytes * BATCHES_PER_BLOCK):
                if isinstance(block, Rest):
                    rest = block
                    break
                queued.append(pool.submit(self.work, block))
                while len(queued) > AHEAD:
                    yield from _slices(self.accept(queued.popleft().result()))
            while queued:
                yield from _slices(self.accept(queued.popleft().result()))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if rest is not None:
            replay = _Replay(rest.head, stream)
            where = (self.binding, self.path, self.member, self.counts)
            for strings in csv_batches(replay, *where, block_bytes=block_bytes, skip_header=rest.header):
                if strings.num_rows:
                    yield self.convert(strings, self.binding, self.ctx)


def _slices(batch: pa.RecordBatch | None) -> Iterator[pa.RecordBatch]:
    """A block's rows as :data:`BATCHES_PER_BLOCK` batches (zero-copy slices)."""
    if batch is None:
        return
    size = -(-batch.num_rows // BATCHES_PER_BLOCK)
    for start in range(0, batch.num_rows, size):
        yield batch.slice(start, size)

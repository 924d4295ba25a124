"""Block-parallel parsing reads every file to the same rows, statistics and errors as the serial reader.

The serial reference is the same parse with block cutting switched off (the whole member goes to the streaming
reader). Small blocks put many rows across block and read boundaries; quotes hand the rest of a member to the serial
reader; the pool's results are taken in file order whatever the threads do.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from pipeline.exports.parsing import BadRow, BadValue, ParseStats, TruncatedFile, blocks
from pipeline.exports.parsing.blocks import Rest, line_blocks
from tests.support.export_files import NAME8, csv_bytes, order, parse_all, write_zip

AT = datetime(2024, 3, 6, tzinfo=UTC)


def _rows(n: int, **special: dict[str, str]) -> list[dict[str, str]]:
    """``n`` orders over two local days, amounts of varying width; ``special`` overrides fields of row ``i``."""
    out = []
    for i in range(n):
        t = f"2024-03-05 {i % 24:02d}:{i % 60:02d}:{(7 * i) % 60:02d}"
        u = f"2024-03-0{5 + i % 2} {(i * 5) % 24:02d}:{i % 60:02d}:{(3 * i) % 60:02d}"
        row = order(
            1000 + i, time=t, update=u, Price=f"{i * 37 % 99991}.{i % 100}", Symbol=("BTCUSDT", "ETHUSDT")[i % 2]
        )
        row.update(special.get(str(i), {}))
        out.append(row)
    return out


def _serial(monkeypatch: pytest.MonkeyPatch) -> None:
    """The streaming reader only: no block is cut."""

    def nothing_cut(stream: Any, block_bytes: int) -> Iterator[Rest]:
        yield Rest(b"", True)

    monkeypatch.setattr(blocks, "line_blocks", nothing_cut)


def _parse(path: Path, **kw: Any) -> tuple[pa.Table, ParseStats]:
    return parse_all(path, ingested_at=AT, **kw)


def _counting_blocks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    cut: list[int] = []
    real = blocks.BlockParse.work

    def work(self: blocks.BlockParse, data: memoryview) -> Any:
        cut.append(len(data))
        return real(self, data)

    monkeypatch.setattr(blocks.BlockParse, "work", work)
    return cut


def _same(path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int) -> tuple[pa.Table, list[int]]:
    with monkeypatch.context() as m:
        cut = _counting_blocks(m)
        table, stats = _parse(path, block_bytes=block_bytes)
    with monkeypatch.context() as m:
        _serial(m)
        want, want_stats = _parse(path, block_bytes=block_bytes)
    assert table.equals(want)
    assert (stats.rows, stats.data_lines, stats.sentinels, stats.quoted, stats.unterminated) == (
        want_stats.rows,
        want_stats.data_lines,
        want_stats.sentinels,
        want_stats.quoted,
        want_stats.unterminated,
    )
    return table, cut


@pytest.mark.parametrize("block_bytes", [301, 1024, 1 << 20])
@pytest.mark.parametrize("crlf", [True, False])
def test_blocks_read_the_rows_the_stream_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int, crlf: bool
) -> None:
    rows = _rows(400)
    path = write_zip(tmp_path / "1.zip", {NAME8: csv_bytes(rows, crlf=crlf)})
    table, cut = _same(path, monkeypatch, block_bytes)
    assert table["order_id"].to_pylist() == [1000 + i for i in range(400)]  # file order
    if block_bytes < 1 << 20:
        assert len(cut) > 10  # many blocks: rows straddle the reads (301 bytes: almost every one)


def test_a_quoted_line_break_hands_the_rest_to_the_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _rows(300, **{"250": {"Client Order Id": 'two\r\nlines, one "quote"'}})
    data = csv_bytes(rows)
    path = tmp_path / NAME8
    path.write_bytes(data)
    table, cut = _same(path, monkeypatch, 512)
    assert 10 < len(cut) < 300 // 5  # the blocks before the quote only
    assert table["client_order_id"][250].as_py() == 'two\r\nlines, one "quote"'
    assert table.num_rows == 300
    # A first read that ends right after the quoted line break: its last line feed is no row boundary.
    monkeypatch.setattr(blocks, "BATCHES_PER_BLOCK", 1)
    table, cut = _same(path, monkeypatch, data.index(b"two\r\n") + 7)
    assert cut == [] and table.num_rows == 300


def test_quoted_header_and_lone_carriage_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    quoted = tmp_path / "q" / NAME8
    quoted.parent.mkdir()
    quoted.write_bytes(csv_bytes(_rows(50), quote_all=True))
    _, cut = _same(quoted, monkeypatch, 512)
    assert cut == []  # quoted from its first line: the stream reads it all
    lone_cr = tmp_path / NAME8
    lines = csv_bytes(_rows(120)).split(b"\r\n")
    ends = [b"\r" if i % 10 == 3 else b"\r\n" for i in range(len(lines))]  # some lines ended by a CR alone
    lone_cr.write_bytes(b"".join(line + end for line, end in zip(lines[:-1], ends, strict=False)))
    table, cut = _same(lone_cr, monkeypatch, 700)
    assert table.num_rows == 120 and cut


def test_errors_name_the_same_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad value, a line of the wrong width, and a time format that differs from the column's first value: each
    refused with the serial reader's message, line number included."""
    lines = csv_bytes(_rows(200)).split(b"\r\n")
    later = {str(i): {"Update Time": "2024-03-05 01:02:03.123"} for i in range(150, 200)}
    formats = csv_bytes(_rows(200, **later))
    cases = {  # name: file, error, block size
        "decimal": (csv_bytes(_rows(200, **{"170": {"Price": "1.123456789"}})), BadValue, 1024),
        "width": (b"\r\n".join([*lines[:171], b"1,2,3", *lines[171:]]), BadRow, 1024),
        # a block that starts with row 150 alone would read the later format without an error
        "format": (formats, BadValue, len(b"\r\n".join(formats.split(b"\r\n")[:151])) + 2),
    }
    monkeypatch.setattr(blocks, "BATCHES_PER_BLOCK", 1)  # blocks of exactly the given size
    for name, (data, error, block_bytes) in cases.items():
        path = tmp_path / name / NAME8
        path.parent.mkdir()
        path.write_bytes(data)
        with monkeypatch.context() as m:
            cut = _counting_blocks(m)
            with pytest.raises(error) as got:
                _parse(path, block_bytes=block_bytes)
        assert cut, name
        with monkeypatch.context() as m:
            _serial(m)
            with pytest.raises(error) as want:
                _parse(path, block_bytes=block_bytes)
        assert str(got.value) == str(want.value), name
        if error is BadValue:
            assert "line 172" in str(got.value) if name == "decimal" else "line 152" in str(got.value)


def test_results_in_file_order_whatever_the_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / NAME8
    path.write_bytes(csv_bytes(_rows(500)))
    tables = []
    for threads in (1, 4):
        with monkeypatch.context() as m:
            m.setattr(blocks, "PARSE_THREADS", threads)
            m.setattr(blocks, "AHEAD", 3 * threads)
            tables.append(_parse(path, block_bytes=997)[0])
    assert tables[0].equals(tables[1])


def test_line_blocks_cut_only_after_line_feeds() -> None:
    body = b"".join(b"%d,%s\r\n" % (i, b"x" * (i % 13)) for i in range(300))
    data = b"\xef\xbb\xbfa,b\r\n" + body + b"300,last"  # no line break at the end

    class Stream:
        def __init__(self) -> None:
            self.at = 0

        def read(self, n: int) -> bytes:
            out = data[self.at : self.at + min(n, 97)]  # short reads, as a stream may give
            self.at += len(out)
            return out

    parts = list(line_blocks(Stream(), 200))
    assert all(isinstance(p, memoryview) for p in parts)
    assert b"".join(bytes(p) for p in parts) == body + b"300,last"
    assert all(bytes(p).endswith(b"\r\n") for p in parts[:-1]) and len(parts) > 20
    quoted = list(line_blocks(iter_reader(b'a,b\n1,2\n3,"x\ny"\n'), 1 << 20))
    assert quoted == [Rest(b'a,b\n1,2\n3,"x\ny"\n', True)]


def iter_reader(data: bytes) -> Any:
    class One:
        done = False

        def read(self, n: int) -> bytes:
            out, self.done = (b"" if self.done else data), True
            return out

    return One()


def test_a_damaged_stream_is_named_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ZIP whose CRC-32 does not match (found once the member is read to its end): the damage is the error, also
    when the last rows hold a bad value, as with the serial reader."""
    for name, rows in (("bad", _rows(2000, **{"1998": {"Price": "1.123456789"}})), ("crc", _rows(2000))):
        data = bytearray(write_zip(tmp_path / f"{name}.zip", {NAME8: csv_bytes(rows)}).read_bytes())
        data[data.rfind(b"PK\x01\x02") + 16] ^= 0xFF  # the central directory's CRC-32 of the member
        path = tmp_path / f"{name}.zip"
        path.write_bytes(bytes(data))
        errors = []
        for serial in (False, True):
            with monkeypatch.context() as m:
                if serial:
                    _serial(m)
                with pytest.raises((BadValue, TruncatedFile)) as got:
                    _parse(path, block_bytes=8192)
            errors.append((type(got.value), str(got.value)))
        assert errors[0] == errors[1]
        assert errors[0][0] is TruncatedFile and "CRC" in errors[0][1]

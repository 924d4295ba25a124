"""Export containers: ZIP, gzip (name in its header) and plain CSV; truncation, bombs, multi-part ZIPs."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest

from pipeline.exports.parsing import TruncatedFile, UnsupportedFile, ZipBombRefused, count_data_lines
from tests.support.export_files import NAME8, csv_bytes, order, parse_all, write_zip


def test_gzip_with_name_in_header_and_plain_csv(tmp_path: Path) -> None:
    data = csv_bytes([order()])
    gz = tmp_path / "777.gz"
    with open(gz, "wb") as fh, gzip.GzipFile(filename=NAME8, mode="wb", fileobj=fh) as g:
        g.write(data)
    table, stats = parse_all(gz)
    assert stats.container == "gzip" and table["utc_offset_minutes"][0].as_py() == 480
    plain = tmp_path / NAME8
    plain.write_bytes(data)
    t2, s2 = parse_all(plain)
    assert s2.container == "csv" and t2.drop_columns(["ingested_at"]).equals(table.drop_columns(["ingested_at"]))


def test_truncated_zip_and_gzip(tmp_path: Path) -> None:
    big = csv_bytes([order(i, update=f"2024-03-05 08:{i % 60:02d}:00") for i in range(3000)])
    z = write_zip(tmp_path / "t.zip", {NAME8: big})
    cut = tmp_path / "cut.zip"
    cut.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    with pytest.raises(TruncatedFile, match="download it again"):
        parse_all(cut)
    gz = tmp_path / "t.gz"
    gz.write_bytes(gzip.compress(big)[:-2000])
    with pytest.raises(TruncatedFile):
        parse_all(gz, utc_offset_minutes=0)
    # damaged bytes inside a complete ZIP: CRC / inflate error, not garbage rows
    raw = bytearray(z.read_bytes())
    raw[200:260] = b"\x00" * 60
    bad = tmp_path / "crc.zip"
    bad.write_bytes(bytes(raw))
    with pytest.raises(TruncatedFile):
        parse_all(bad)


def _zeros_zip(path: Path, size: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open(NAME8, "w") as m:
        chunk = b"\0" * (1 << 20)
        for _ in range(size >> 20):
            m.write(chunk)
    return path


def test_zip_bomb_refused_before_extraction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _zeros_zip(tmp_path / "bomb.zip", 64 << 20)
    assert bomb.stat().st_size < 200_000
    opened: list[str] = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, *a, **k: opened.append("x") or real_open(self, *a, **k))
    with pytest.raises(ZipBombRefused, match="before extracting"):
        parse_all(bomb, max_uncompressed_bytes=8 << 20)
    with pytest.raises(ZipBombRefused, match="more than 200x"):  # default size limit, ratio guard
        parse_all(bomb)
    assert opened == []  # nothing was decompressed
    monkeypatch.undo()
    gz = tmp_path / "bomb.gz"
    line = csv_bytes([order()]).split(b"\r\n", 1)[1]
    gz.write_bytes(gzip.compress(csv_bytes([order()]) + line * 100_000))  # ~27 MB of valid rows
    with pytest.raises(ZipBombRefused, match="limit"):  # gzip has no trustworthy size: counted while reading
        parse_all(gz, max_uncompressed_bytes=4 << 20, utc_offset_minutes=0)


def test_multi_part_zip_read_in_order(tmp_path: Path) -> None:
    base = "Binance-Futures-Order-History-202403051200(UTC+8)"
    p = write_zip(
        tmp_path / "parts.zip",
        {
            f"{base}-part2-of2.csv": csv_bytes([order(2)]),
            f"{base}-part1-of2.csv": csv_bytes([order(1)]),
        },
    )
    table, stats = parse_all(p)
    assert table["order_id"].to_pylist() == [1, 2] and stats.data_lines == 2
    assert count_data_lines(p) == 2
    broken = write_zip(
        tmp_path / "broken.zip",
        {f"{base}-part1-of3.csv": csv_bytes([order(1)]), f"{base}-part3-of3.csv": csv_bytes([order(3)])},
    )
    with pytest.raises(UnsupportedFile, match="incomplete"):
        parse_all(broken)


def _patch_central(path: Path, field_offset: int, value: int) -> None:
    """Overwrite a 4-byte field of the (only) central directory entry: the CRC-32 (16) or the size (24)."""
    raw = bytearray(path.read_bytes())
    at = raw.rindex(b"PK\x01\x02") + field_offset
    raw[at : at + 4] = value.to_bytes(4, "little")
    path.write_bytes(bytes(raw))


def test_inflated_member_reads_like_zipfile_and_checks_crc_and_size(tmp_path: Path) -> None:
    """The ISA-L reader of deflated members (pipeline/exports/parsing/inflate.py) returns zipfile's bytes in reads of
    any size, a stored member still parses, and a member whose bytes disagree with the ZIP's CRC or size is refused."""
    from pipeline.exports.parsing.inflate import DeflatedMember

    big = csv_bytes([order(i, update=f"2024-03-05 08:{i % 60:02d}:00") for i in range(3000)])
    z = write_zip(tmp_path / "ok.zip", {NAME8: big})
    info = zipfile.ZipFile(z).infolist()[0]
    with DeflatedMember(str(z), info) as member:
        got = [member.read(7), member.read(0), member.read(100_000), member.read()]
        while chunk := member.read(4096):
            got.append(chunk)
    assert [len(g) for g in got[:3]] == [7, 0, 100_000] and b"".join(got) == big
    stored = tmp_path / "stored.zip"
    with zipfile.ZipFile(stored, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(NAME8, big)
    assert parse_all(stored)[0].num_rows == parse_all(z)[0].num_rows == 3000
    for name, field, value in (("crc.zip", 16, info.CRC ^ 1), ("size.zip", 24, info.file_size + 1)):
        bad = tmp_path / name
        bad.write_bytes(z.read_bytes())
        _patch_central(bad, field, value)
        with pytest.raises(TruncatedFile, match="download it again"):
            parse_all(bad)

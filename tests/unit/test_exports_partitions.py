"""write_export_partitions: the days of a file, dedupe, empty exports; days encoded while parsing, late errors.

Small CSV blocks and a small memory budget make a few hundred rows behave like a multi-million-row export: many
batches, days handed to the writer threads mid-parse, days that get rows again after that (extra chunks, merged at
the end), and the memory limit forcing every buffered day out.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.exports import ingest
from pipeline.exports.ingest import ExportIngestResult, write_export_partitions
from pipeline.exports.parsing import BadValue, count_data_lines
from pipeline.sandbox.export_dialects import API_HEADER as HEADER
from pipeline.storage import day_writer, lake
from pipeline.storage.schemas import futures_orders
from tests.support.export_files import NAME8, csv_bytes, order, parse_all, write_zip

NAME = "Binance-Futures-Order-History-202403100000(UTC0).csv"
START = datetime(2024, 3, 1, tzinfo=UTC)
DAYS = [date(2024, 3, d) for d in range(1, 6)]
SYMBOLS = ("BTCUSDT", "ETHUSDT", "币安人生USDT", "1000PEPEUSDT")
BLOCK = 4096  # ~40 rows per CSV batch


def _row(
    order_id: int, update: datetime, *, symbol: str = "BTCUSDT", price: str = "1.5", status: str = "FILLED"
) -> dict[str, str]:
    local = update.strftime("%Y-%m-%d %H:%M:%S")
    return {
        "Uid": "1",
        "Time": (update - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S"),
        "Order No": str(order_id),
        "Symbol": symbol,
        "Type": "LIMIT",
        "Side": "BUY",
        "Position Side": "BOTH",
        "Price": price,
        "Average Price": price,
        "Amount": "2",
        "Executed Amount": "2",
        "Executed Quote Amount": "3",
        "Stop Price": "0",
        "Status": status,
        "Client Order Id": f"c{order_id}",
        "Time In Force": "GTC",
        "Activate Price": "",
        "Price Rate": "",
        "Update Time": local,
    }


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    cols = HEADER.split(",")
    lines = [HEADER] + [",".join(r[c] for c in cols) for r in rows]
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())
    return path


def _rows(n: int, seed: int = 3) -> list[dict[str, str]]:
    """``n`` orders in time order over DAYS, some with older versions elsewhere in the file."""
    rng = random.Random(seed)
    span = len(DAYS) * 86400
    rows = [
        _row(
            10_000 + i,
            START + timedelta(seconds=i * span // n),
            symbol=rng.choice(SYMBOLS),
            price=f"{rng.randint(1, 10**6)}.{rng.randint(0, 99):02d}",
        )
        for i in range(n)
    ]
    for i in range(0, n, 37):  # an older version of every 37th order, earlier in the file (possibly another day)
        newer = rows[i]
        older_time = datetime.strptime(newer["Update Time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        older = _row(
            int(newer["Order No"]),
            max(START, older_time - timedelta(hours=rng.randint(0, 30))),
            symbol=newer["Symbol"],
            status="NEW",
        )
        if older["Update Time"] != newer["Update Time"]:
            rows.insert(max(0, i - rng.randint(1, 200)), older)
    return rows


def _expected(rows: list[dict[str, str]]) -> dict[date, list[tuple[str, int, str]]]:
    """Independent reference: each day holds the newest version (last row on ties) of every order with a version on
    that UTC day (versions on other days are kept there), in lake order."""
    newest: dict[tuple[str, int, str], dict[str, str]] = {}
    for r in rows:
        key = (r["Symbol"], int(r["Order No"]), r["Update Time"][:10])
        if key not in newest or r["Update Time"] >= newest[key]["Update Time"]:
            newest[key] = r
    out: dict[date, list[tuple[str, int, str]]] = {d: [] for d in DAYS}
    for r in newest.values():
        out[date.fromisoformat(r["Update Time"][:10])].append((r["Symbol"], int(r["Order No"]), r["Update Time"]))
    for v in out.values():
        v.sort(key=lambda t: (t[0].encode(), t[2], t[1]))
    return out


def _lake(data: Path, day: date) -> list[tuple[str, int, str]]:
    t = lake.read_partition(data, "futures_orders", "main", day)
    return [(r["symbol"], r["order_id"], r["update_time"].strftime("%Y-%m-%d %H:%M:%S")) for r in t.to_pylist()]


def _ingest(path: Path, data: Path, days: list[date] | None = None) -> ExportIngestResult:
    return write_export_partitions(
        path,
        data_dir=data,
        table="futures_orders",
        market="usdm",
        account="main",
        download_id="9",
        days=days,
        block_bytes=BLOCK,
    )


def _recording_stage(monkeypatch: pytest.MonkeyPatch) -> list[date]:
    """Days staged while the stream goes on and days merged from their parts at the end, in call order."""
    calls: list[date] = []
    real, real_merge = lake.stage_partition, day_writer.merge_day_stream

    def stage(staging: Path, table: str, account: str, day: date, rows: pa.Table) -> lake.StagedPartition:
        calls.append(day)
        return real(staging, table, account, day, rows)

    def merge(staging: Path, table: str, account: str, day: date, new, **kw):  # type: ignore[no-untyped-def]
        calls.append(day)
        return real_merge(staging, table, account, day, new, **kw)

    monkeypatch.setattr(lake, "stage_partition", stage)
    monkeypatch.setattr(day_writer, "merge_day_stream", merge)
    return calls


def test_time_ordered_file_is_encoded_while_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _rows(1500)
    path = _write(tmp_path / NAME, rows)
    parsing = {"done": False}
    real_parse = ingest.parse_export

    def parse(*args: object, **kw: object):  # type: ignore[no-untyped-def]
        yield from real_parse(*args, **kw)  # type: ignore[arg-type]
        parsing["done"] = True

    staged_while_parsing: list[int] = []
    real_submit = day_writer.DayWriter._submit

    def submit(self: day_writer.DayWriter, day: int) -> None:
        if not parsing["done"]:
            staged_while_parsing.append(day)
        real_submit(self, day)

    monkeypatch.setattr(ingest, "parse_export", parse)
    monkeypatch.setattr(day_writer.DayWriter, "_submit", submit)
    monkeypatch.setattr(day_writer, "BUFFER_BYTES", 200_000)  # well above a few days, well below the whole file
    spilled = _recording_spills(monkeypatch)
    data = tmp_path / "data"
    res = _ingest(path, data, DAYS)
    assert len(staged_while_parsing) >= 3  # the first days went to the writer threads before the file ended
    assert spilled == []  # in time order, memory holds only the days the stream is still on
    expected = _expected(rows)
    assert res.partitions == {d: len(v) for d, v in expected.items()}
    assert res.duplicates_dropped == len(rows) - sum(map(len, expected.values())) > 0
    for d in DAYS:
        assert _lake(data, d) == expected[d]
    assert not any((data / "tmp").iterdir())


def _recording_spills(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    spilled: list[int] = []
    real = day_writer.DayWriter._spill

    def spill(self: day_writer.DayWriter) -> None:
        spilled.append(len(self._buffered))
        real(self)

    monkeypatch.setattr(day_writer.DayWriter, "_spill", spill)
    return spilled


def test_out_of_order_file_spills_and_merges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _rows(1200)
    random.Random(5).shuffle(rows)  # every batch touches every day: no day goes cold, the memory limit spills
    path = _write(tmp_path / NAME, rows)
    monkeypatch.setattr(day_writer, "BUFFER_BYTES", 64 * 1024)
    spilled = _recording_spills(monkeypatch)
    calls = _recording_stage(monkeypatch)
    data = tmp_path / "data"
    res = _ingest(path, data)
    assert len(spilled) >= 3 and sorted(calls) == DAYS  # spilled several times, then one merged file per day
    expected = _expected(rows)
    assert res.partitions == {d: len(v) for d, v in expected.items()}
    for d in DAYS:
        assert _lake(data, d) == expected[d]
    assert lake.read_partition(data, "futures_orders", "main", DAYS[0]).schema == futures_orders.SCHEMA
    assert not any((data / "tmp").iterdir())
    assert sorted(p.name for p in (data / "lake").rglob("*") if p.is_file()) == ["part-0.parquet"] * len(DAYS)


def test_encoded_and_spilled_parts_merge_in_file_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ties on update_time keep the last row of the file, whichever kind of part each version is in."""
    ordered = _rows(900)
    t = START + timedelta(hours=2)
    stragglers = [_row(5, t, price=f"{k}.5") for k in range(1, 40)]  # one order, one update_time, 39 versions
    stragglers += [_row(20_000 + i, START + timedelta(days=i % 5, hours=5)) for i in range(300)]
    random.Random(9).shuffle(stragglers)
    rows = [_row(5, t, price="0.5"), *ordered, *stragglers]
    path = _write(tmp_path / NAME, rows)
    monkeypatch.setattr(day_writer, "COLD_BATCHES", 1)  # the ordered rows' days are encoded as the stream moves on
    monkeypatch.setattr(day_writer, "BUFFER_BYTES", 40 * 1024)  # the shuffled stragglers are spilled
    spilled = _recording_spills(monkeypatch)
    calls = _recording_stage(monkeypatch)
    data = tmp_path / "data"
    _ingest(path, data)
    assert spilled and calls.count(DAYS[0]) >= 2  # day 1: encoded early, spilled later, merged at the end
    last = [r["Price"] for r in rows if r["Order No"] == "5"][-1]
    got = [r for r in lake.read_partition(data, "futures_orders", "main", DAYS[0]).to_pylist() if r["order_id"] == 5]
    assert [r["price"] for r in got] == [Decimal(last)]
    expected = _expected(rows)
    for d in DAYS:
        assert _lake(data, d) == expected[d]


def test_rows_outside_the_range_go_to_their_own_days(tmp_path: Path) -> None:
    rows = _rows(400)
    path = _write(tmp_path / NAME, rows)
    data = tmp_path / "data"
    wanted = DAYS[1:3]
    res = _ingest(path, data, wanted)
    expected = _expected(rows)
    assert lake.list_partitions(data, "futures_orders", "main") == DAYS
    for d in DAYS:  # nothing is dropped: the days outside the range hold their rows too
        assert _lake(data, d) == expected[d]
    assert res.outside_days == {d: len(expected[d]) for d in DAYS if d not in wanted}
    assert any("outside the export's range" in w for w in res.warnings)


def test_tie_on_update_time_keeps_the_last_row_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = START + timedelta(hours=3)
    filler = [_row(1000 + i, START + timedelta(days=1 + i % 3, seconds=i)) for i in range(300)]
    rows = [_row(7, t, price="1.1"), *filler, _row(7, t, price="2.2")]  # same order, same update_time
    path = _write(tmp_path / NAME, rows)
    monkeypatch.setattr(day_writer, "COLD_BATCHES", 1)  # day 1 is encoded long before its last row arrives
    data = tmp_path / "data"
    res = _ingest(path, data)
    got = [r for r in lake.read_partition(data, "futures_orders", "main", DAYS[0]).to_pylist() if r["order_id"] == 7]
    assert [r["price"] for r in got] == [Decimal("2.2")] and res.duplicates_dropped == 1


def test_parse_error_after_days_were_staged_leaves_lake_untouched(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "good").mkdir()
    good = _write(tmp_path / "good" / NAME, _rows(300))
    _ingest(good, data, DAYS)
    before = {p: p.read_bytes() for p in (data / "lake").rglob("*.parquet")}
    rows = _rows(1500, seed=4)
    rows[-1]["Price"] = "1.123456789"  # 9 decimals: more than the column keeps, on the file's last line
    bad = _write(tmp_path / NAME, rows)
    with pytest.raises(BadValue, match="fractional digits"):
        _ingest(bad, data, DAYS)
    assert {p: p.read_bytes() for p in (data / "lake").rglob("*.parquet")} == before
    assert [p.name for p in (data / "lake").rglob("*") if p.is_file()] == ["part-0.parquet"] * len(DAYS)
    assert not any((data / "tmp").iterdir())


def test_writer_error_leaves_lake_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    path = _write(tmp_path / NAME, _rows(1500))
    calls = 0
    real = lake.stage_partition

    def failing(staging: Path, table: str, account: str, day: date, rows: pa.Table) -> lake.StagedPartition:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("disk full (simulated)")
        return real(staging, table, account, day, rows)

    monkeypatch.setattr(lake, "stage_partition", failing)
    with pytest.raises(OSError, match="simulated"):
        _ingest(path, data, DAYS)
    assert not (data / "lake").exists() or not any((data / "lake").rglob("*.parquet"))
    assert not any((data / "tmp").iterdir())


def test_empty_export_sentinel_writes_empty_partitions(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "e.zip", {NAME8: csv_bytes([], sentinel=True)})
    table, stats = parse_all(path)
    assert table.num_rows == 0 and stats.sentinels == 1 and stats.data_lines == 0
    assert count_data_lines(path) == 0
    days = [date(2024, 3, 5), date(2024, 3, 6)]
    res = write_export_partitions(
        path,
        data_dir=tmp_path / "data",
        table="futures_orders",
        market="usdm",
        account="main",
        download_id="777",
        days=days,
    )
    assert res.rows == 0 and res.partitions == {d: 0 for d in days}
    assert lake.list_partitions(tmp_path / "data", "futures_orders", "main") == days


def test_daily_split_dedupe_and_days(tmp_path: Path) -> None:
    rows = [
        order(1, update="2024-03-05 07:59:59"),  # 2024-03-04 23:59:59 UTC
        order(2, update="2024-03-05 08:00:00"),  # 2024-03-05 00:00:00 UTC
        order(3, update="2024-03-06 07:59:59"),  # 2024-03-05 23:59:59 UTC
        order(4, update="2024-03-07 12:00:00", Status="NEW"),  # 2024-03-07, older version of 4
        order(4, update="2024-03-08 09:00:00", Status="FILLED"),  # 2024-03-08 01:00 UTC, newest version
        order(9, update="2024-03-20 09:00:00"),  # outside the requested days: written to its own day
        order(2, update="2024-03-05 08:00:00", Status="NEW"),  # the same order and version again: one row kept
    ]
    path = write_zip(tmp_path / "d.zip", {NAME8: csv_bytes(rows)})
    data = tmp_path / "data"
    days = [date(2024, 3, d) for d in range(4, 9)]
    res = write_export_partitions(
        path, data_dir=data, table="futures_orders", market="usdm", account="main", download_id="777", days=days
    )
    assert res.partitions == {
        date(2024, 3, 4): 1,
        date(2024, 3, 5): 2,
        date(2024, 3, 6): 0,
        date(2024, 3, 7): 1,
        date(2024, 3, 8): 1,
        date(2024, 3, 20): 1,
    }
    assert res.data_lines == 7 and res.rows == 7
    assert res.duplicates_dropped == 1 and res.outside_days == {date(2024, 3, 20): 1}
    assert any("outside" in w for w in res.warnings) and any("repeated" in w for w in res.warnings)
    got = lake.read_partition(data, "futures_orders", "main", date(2024, 3, 8)).to_pylist()
    assert [(r["order_id"], r["status"]) for r in got] == [(4, "FILLED")]
    older = lake.read_partition(data, "futures_orders", "main", date(2024, 3, 7)).to_pylist()
    assert [(r["order_id"], r["status"]) for r in older] == [(4, "NEW")]  # every version is kept
    assert lake.read_partition(data, "futures_orders", "main", date(2024, 3, 5))["order_id"].to_pylist() == [2, 3]
    assert not any((data / "tmp").iterdir())  # staging cleaned up
    before = {p: pq.read_table(p) for p in (data / "lake").rglob("*.parquet")}
    # idempotent re-ingest: same partitions, one file each, unchanged rows keep their ingested_at
    again = write_export_partitions(
        path, data_dir=data, table="futures_orders", market="usdm", account="main", download_id="777", days=days
    )
    assert again.partitions == res.partitions
    assert {p: pq.read_table(p) for p in (data / "lake").rglob("*.parquet")} == before


def test_parse_failure_leaves_lake_untouched(tmp_path: Path) -> None:
    data = tmp_path / "data"
    good = write_zip(tmp_path / "g.zip", {NAME8: csv_bytes([order(1)])})
    write_export_partitions(good, data_dir=data, table="pm_um_orders", market="pm_um", account="main", download_id="1")
    part = lake.partition_path(data, "pm_um_orders", "main", date(2024, 3, 5))
    before = part.read_bytes()
    bad = write_zip(tmp_path / "b.zip", {NAME8: csv_bytes([order(2), order(3, Price="abc")])})
    with pytest.raises(BadValue):
        write_export_partitions(
            bad, data_dir=data, table="pm_um_orders", market="pm_um", account="main", download_id="2"
        )
    assert part.read_bytes() == before
    assert not any((data / "tmp").iterdir())
    with pytest.raises(ValueError, match="belongs to table"):
        write_export_partitions(
            good, data_dir=data, table="futures_orders", market="pm_um", account="main", download_id="1"
        )

"""The export tables' quality rules pass a clean export and catch each fault they exist for."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.exports import checks
from pipeline.exports.ingest import write_export_partitions
from pipeline.exports.ledger import ExportLedger, LedgerEntry
from pipeline.exports.states import LedgerState
from pipeline.storage import lake
from pipeline.times import day_end_ms, day_start_ms
from tests.support.export_files import NAME8, csv_bytes, order
from tests.support.exports import attempt

DAYS = [date(2024, 3, 5), date(2024, 3, 6)]


def ingest(tmp_path: Path, rows: list[dict[str, str]], download_id: str, days: list[date]) -> LedgerEntry:
    """Write an export's partitions and record them in the ledger as the chain does."""
    src = tmp_path / f"{download_id}-{NAME8}"
    src.write_bytes(csv_bytes(rows))
    res = write_export_partitions(
        src,
        data_dir=tmp_path,
        table="futures_orders",
        market="usdm",
        account="main",
        download_id=download_id,
        days=days,
    )
    ledger = ExportLedger(tmp_path)
    entry = attempt(ledger, start_ms=day_start_ms(days[0]), end_ms=day_end_ms(days[-1]))
    ledger.record_created(entry.id, download_id=download_id, avg_cost_ms=None, now_ms=0, next_poll_at=0)
    ledger.update(entry.id, 1, "poll", status=LedgerState.COMPLETED)  # the life cycle allows no shortcut
    ledger.update(entry.id, 1, "retrieved", status=LedgerState.RETRIEVED)
    return ledger.update(
        entry.id,
        1,
        "ingested",
        status=LedgerState.INGESTED,
        rows=res.rows,
        data_lines=res.data_lines,
        parsed_rows=res.parsed_rows,
        partitions={d.isoformat(): n for d, n in res.partitions.items()},
    )


def failed(tmp_path: Path, entry: LedgerEntry) -> dict[str, int]:
    return {r.name: r.violations for r in checks.export_rules(tmp_path, "futures_orders", entry) if not r.passed}


def test_clean_export_passes(tmp_path: Path) -> None:
    entry = ingest(tmp_path, [order(1), order(2, update="2024-03-06 10:00:00")], "1", DAYS)
    assert failed(tmp_path, entry) == {}
    assert checks.account_order_keys(tmp_path, "futures_orders", "main")["order_id"].to_pylist() == [1, 2]


def test_versions_of_an_order_on_two_days_pass_but_a_version_stored_twice_does_not(tmp_path: Path) -> None:
    first = ingest(tmp_path, [order(7, update="2024-03-05 10:00:00", Status="NEW")], "1", DAYS)
    later = ingest(tmp_path, [order(7, update="2024-03-09 10:00:00")], "2", [date(2024, 3, 9)])
    assert failed(tmp_path, later) == {} and failed(tmp_path, first) == {}  # every version kept, each once
    again = lake.read_partition(tmp_path, "futures_orders", "main", DAYS[0])
    path = lake.partition_path(tmp_path, "futures_orders", "main", DAYS[1])  # the NEW version a second time, by hand
    pq.write_table(again, path)
    assert failed(tmp_path, first) == {
        "unique (order_id, update_time)": 1,
        "update_time inside the partition's UTC day": 1,
    }


def test_lake_holds_fewer_rows_than_the_ledger(tmp_path: Path) -> None:
    entry = ingest(tmp_path, [order(1), order(2)], "1", DAYS)
    part = lake.read_partition(tmp_path, "futures_orders", "main", DAYS[0])
    lake.write_partition(tmp_path, "futures_orders", "main", DAYS[0], part.slice(0, 1))
    lake.partition_path(tmp_path, "futures_orders", "main", DAYS[1]).unlink()
    broken = checks.partitions_as_recorded(tmp_path, "futures_orders", entry)
    assert broken.violations == 2 and broken.examples == [
        "2024-03-05: ledger 2, lake 1",
        "2024-03-06: ledger 0, lake missing",
    ]


def test_lost_line_and_bad_decimals(tmp_path: Path) -> None:
    entry = ingest(tmp_path, [order(1, **{"Executed Amount": "0.2", "Amount": "0.1"})], "1", DAYS)
    assert failed(tmp_path, dataclasses.replace(entry, parsed_rows=0)) == {
        "rows parsed = data lines in the export file": 1,
        "executed_qty <= orig_qty": 1,
    }
    [rule] = [r for r in checks.export_rules(tmp_path, "futures_orders", entry) if not r.passed]
    assert rule.examples[0].startswith("2024-03-05: ")

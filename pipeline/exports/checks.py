"""Data-quality rules of the export tables (futures_orders, pm_um_orders), Dagster-free, for asset checks.

Per partition the shared :func:`pipeline.quality.futures_order_rules` apply (update time inside the day, decimals
valid). What only an export can be checked for lives here: one row per order version (``order_id``,
``update_time``) in the whole table of an account (a day-by-day check cannot see a version written to two days),
and every data line of the export file accounted for, in the parser and in the lake.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import quality
from pipeline.exports.ledger import LedgerEntry
from pipeline.storage import lake
from pipeline.storage.schemas import schema_for

KEY_COLUMNS = ["symbol", "order_id", "update_time"]


def _read(
    data_dir: str | os.PathLike[str], table: str, account: str, day: date, columns: list[str] | None = None
) -> pa.Table:
    # ParquetFile.read has less overhead per small file than pq.read_table, and a year is 365 files
    stored = lake.open_partition(data_dir, table, account, day)
    if stored is None:
        raise lake.PartitionMissing(f"{table}: no partition for account={account} date={day.isoformat()}")
    return stored.read(columns=columns)


def account_order_keys(
    data_dir: str | os.PathLike[str], table: str, account: str, skip: Iterable[date] = ()
) -> pa.Table:
    """(symbol, order_id, update_time) of every row of an account's table (but the ``skip`` days): three
    narrow columns, so even millions of orders fit easily."""
    skipped = set(skip)
    parts = [
        _read(data_dir, table, account, d, KEY_COLUMNS)
        for d in lake.list_partitions(data_dir, table, account)
        if d not in skipped
    ]
    schema = schema_for(table)
    return pa.concat_tables(parts) if parts else pa.schema([schema.field(c) for c in KEY_COLUMNS]).empty_table()


OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
_OPEN_COLUMNS = ["symbol", "order_id", "status", "update_time", "source"]


def open_orders_awaiting_final(data_dir: str | os.PathLike[str], table: str, account: str) -> pa.Table:
    """Orders whose LATEST stored version is still open (NEW, PARTIALLY_FILLED): an export made while they were open
    cannot show how they ended, so they wait for a later export of their update day or the daily REST refresh.
    Columns: symbol, order_id, status, update_time, source; oldest first."""
    parts = [_read(data_dir, table, account, d, _OPEN_COLUMNS) for d in lake.list_partitions(data_dir, table, account)]
    schema = schema_for(table)
    if not parts:
        return pa.schema([schema.field(c) for c in _OPEN_COLUMNS]).empty_table()
    rows = pa.concat_tables(parts)
    latest = rows.group_by(["symbol", "order_id"]).aggregate([("update_time", "max")])
    newest = rows.join(latest, keys=["symbol", "order_id"]).filter(
        pc.equal(pc.field("update_time"), pc.field("update_time_max"))
    )
    still_open = newest.filter(pc.is_in(newest["status"], pa.array(OPEN_STATUSES)))
    return still_open.select(_OPEN_COLUMNS).sort_by([("update_time", "ascending"), ("order_id", "ascending")])


def unique_order_id(keys: pa.Table) -> quality.RuleResult:
    """Futures order ids are unique per account, across symbols and days: each version of an order (its
    ``update_time``) is stored once, though its versions may lie on several days."""
    return quality.duplicate_keys(keys, ["order_id", "update_time"])


def data_lines_parsed(entry: LedgerEntry) -> quality.RuleResult:
    """The CSV reader produced one row per data line of the file (an independent line count): a lost line or a
    quoted line break would make them differ."""
    result = quality.RuleResult("rows parsed = data lines in the export file")
    if entry.parsed_rows != entry.data_lines:
        result.violations = abs((entry.parsed_rows or 0) - (entry.data_lines or 0)) or 1
        result.examples = [f"download id {entry.download_id}: {entry.parsed_rows} rows, {entry.data_lines} lines"]
    return result


def partitions_as_recorded(data_dir: str | os.PathLike[str], table: str, entry: LedgerEntry) -> quality.RuleResult:
    """Each day the ledger says the export wrote holds at least that many rows in the lake: rows merge into a day,
    so it may hold more (other exports' rows, versions), never fewer (a day is never replaced by a subset)."""
    result = quality.RuleResult("lake partitions hold at least the rows the ledger recorded")
    for day, rows in sorted((entry.partitions or {}).items()):
        stored = lake.open_partition(data_dir, table, entry.account, date.fromisoformat(day))
        actual = stored.metadata.num_rows if stored is not None else None
        if actual is None or actual < rows:
            result.violations += 1
            if len(result.examples) < 3:
                result.examples.append(f"{day}: ledger {rows}, lake {actual if actual is not None else 'missing'}")
    return result


def export_rules(data_dir: str | os.PathLike[str], table: str, entry: LedgerEntry) -> list[quality.RuleResult]:
    """Every rule for one ingested export: the file-level counts, its partitions (each day's rules summed) and
    order_id uniqueness over the account's whole table."""
    per_day: dict[str, quality.RuleResult] = {}
    days = [date.fromisoformat(d) for d in sorted(entry.partitions or {})]
    keys = []
    for day in days:
        rows = _read(data_dir, table, entry.account, day)
        keys.append(rows.select(KEY_COLUMNS))
        for r in quality.futures_order_rules(rows, day):
            total = per_day.setdefault(r.name, quality.RuleResult(r.name))
            total.violations += r.violations
            total.examples += [f"{day}: {x}" for x in r.examples][: max(0, 3 - len(total.examples))]
    keys.append(account_order_keys(data_dir, table, entry.account, skip=days))
    return [
        data_lines_parsed(entry),
        partitions_as_recorded(data_dir, table, entry),
        *per_day.values(),
        unique_order_id(pa.concat_tables(keys)),
    ]

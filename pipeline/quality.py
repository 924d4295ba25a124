"""Data-quality rules for lake partitions, as plain functions over Arrow tables.

The Dagster asset checks call these on every partition a run writes; keeping them Dagster-free lets the
tests (and ``orderlake status``) use the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

SPOT_STATUSES = frozenset(
    {
        "NEW",
        "PENDING_NEW",
        "PARTIALLY_FILLED",
        "FILLED",
        "CANCELED",
        "PENDING_CANCEL",
        "REJECTED",
        "EXPIRED",
        "EXPIRED_IN_MATCH",
    }
)
SPOT_TYPES = frozenset(
    {"LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER"}
)
FUTURES_STATUSES = frozenset(
    {"NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"}
)
FUTURES_TYPES = frozenset(
    {
        "LIMIT",
        "MARKET",
        "STOP",
        "STOP_MARKET",
        "TAKE_PROFIT",
        "TAKE_PROFIT_MARKET",
        "TRAILING_STOP_MARKET",
        "LIQUIDATION",
        "ADL",
    }
)
# cummulativeQuoteQty is negative for some old spot orders: Binance's "not available", not a bad value.
MAY_BE_NEGATIVE = frozenset({"cummulative_quote_qty"})


@dataclass
class RuleResult:
    name: str
    violations: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.violations == 0


def _day_bounds(day: date) -> tuple[pa.Scalar, pa.Scalar]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    ts = pa.timestamp("ms", tz="UTC")
    return pa.scalar(start, ts), pa.scalar(start + timedelta(days=1), ts)


def duplicate_keys(table: pa.Table, keys: Iterable[str]) -> RuleResult:
    keys = list(keys)
    result = RuleResult(f"unique ({', '.join(keys)})")
    if table.num_rows == 0:
        return result
    counts = table.group_by(keys).aggregate([([], "count_all")])
    dupes = counts.filter(pc.greater(counts["count_all"], 1))
    result.violations = int(pc.sum(dupes["count_all"]).as_py() or 0) - dupes.num_rows
    result.examples = [str(row) for row in dupes.slice(0, 3).to_pylist()]
    return result


def time_outside_day(table: pa.Table, day: date, column: str) -> RuleResult:
    """Rows whose ``column`` is NULL or not on ``day`` (UTC): they belong to another partition."""
    result = RuleResult(f"{column} inside the partition's UTC day")
    if table.num_rows == 0:
        return result
    lo, hi = _day_bounds(day)
    col = table[column]
    bad = pc.or_(pc.less(col, lo), pc.greater_equal(col, hi))
    bad = pc.fill_null(bad, True)
    result.violations = int(pc.sum(bad).as_py() or 0)
    if result.violations:
        result.examples = [str(v) for v in table.filter(bad)[column].slice(0, 3).to_pylist()]
    return result


def update_time_outside_day(table: pa.Table, day: date) -> RuleResult:
    return time_outside_day(table, day, "update_time")


def executed_exceeds_orig(table: pa.Table) -> RuleResult:
    result = RuleResult("executed_qty <= orig_qty")
    if table.num_rows == 0:
        return result
    bad = pc.fill_null(pc.greater(table["executed_qty"], table["orig_qty"]), False)
    result.violations = int(pc.sum(bad).as_py() or 0)
    if result.violations:
        result.examples = [str(r) for r in table.filter(bad).select(["symbol", "order_id"]).to_pylist()[:3]]
    return result


def negative_decimals(table: pa.Table) -> RuleResult:
    result = RuleResult("decimals non-negative")
    for name in table.column_names:
        if name in MAY_BE_NEGATIVE or not pa.types.is_decimal(table.schema.field(name).type):
            continue
        bad = pc.fill_null(pc.less(table[name], pa.scalar(0).cast(table.schema.field(name).type)), False)
        count = int(pc.sum(bad).as_py() or 0)
        if count:
            result.violations += count
            result.examples.append(f"{name}: {count}")
    return result


def outside_enum(table: pa.Table, enums: Mapping[str, frozenset[str]]) -> RuleResult:
    result = RuleResult("statuses and types in their enums")
    for column, allowed in enums.items():
        if column not in table.column_names or table.num_rows == 0:
            continue
        values = table[column]
        bad = pc.invert(pc.fill_null(pc.is_in(values, value_set=pa.array(sorted(allowed))), False))
        count = int(pc.sum(bad).as_py() or 0)
        if count:
            result.violations += count
            unknown = sorted({str(v) for v in values.filter(bad).to_pylist()})[:5]
            result.examples.append(f"{column}: {unknown}")
    return result


def spot_order_rules(table: pa.Table, day: date) -> list[RuleResult]:
    return [
        duplicate_keys(table, ["symbol", "order_id"]),
        update_time_outside_day(table, day),
        executed_exceeds_orig(table),
        negative_decimals(table),
        outside_enum(table, {"status": SPOT_STATUSES, "type": SPOT_TYPES}),
    ]


def futures_order_rules(table: pa.Table, day: date) -> list[RuleResult]:
    return [
        duplicate_keys(table, ["symbol", "order_id"]),
        update_time_outside_day(table, day),
        executed_exceeds_orig(table),
        negative_decimals(table),
        outside_enum(table, {"status": FUTURES_STATUSES}),
    ]

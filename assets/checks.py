"""Asset checks of lake partitions: the rules of :mod:`pipeline.quality`, evaluated on the files a run wrote.

The checks read the partitions back from disk rather than trusting the in-memory rows, so they verify what a
reader (DuckDB, a BI tool) will actually see.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pyarrow as pa

from pipeline import quality
from pipeline.storage import lake

Rules = Callable[[pa.Table, date], list[quality.RuleResult]]


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR


# In the order pipeline.quality.spot_order_rules / futures_order_rules return their results.
ORDER_CHECKS = (
    Check("unique_symbol_order_id", "(symbol, order_id) is unique within each partition"),
    Check("update_time_in_partition_day", "every update_time lies inside its partition's UTC day"),
    Check("executed_qty_le_orig_qty", "executed_qty <= orig_qty"),
    Check("decimals_non_negative", "prices and quantities are non-negative (cummulative_quote_qty < 0 is "
                                   "Binance's 'not available' for old orders and is allowed)"),
    # Binance keeps adding enum values (binance-api.md §10.1): an unknown one is worth a look, not a failed run.
    Check("enums_known", "status and type belong to their documented enums", dg.AssetCheckSeverity.WARN),
)
ORDER_LIST_CHECKS = (
    Check("unique_order_list_id", "order_list_id is unique within each partition"),
    Check("transaction_time_in_partition_day", "every transaction_time lies inside its partition's UTC day"),
)


def specs(asset: str, checks: Sequence[Check], *, blocking: bool = True) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(c.name, asset=asset, description=c.description,
                              blocking=blocking and c.severity == dg.AssetCheckSeverity.ERROR) for c in checks]


def order_list_rules(table: pa.Table, day: date) -> list[quality.RuleResult]:
    return [quality.duplicate_keys(table, ["order_list_id"]),
            quality.time_outside_day(table, day, "transaction_time")]


def evaluate(data_dir: Path, table: str, account: str, days: Iterable[date], rules: Rules,
             checks: Sequence[Check], selected: set[dg.AssetCheckKey] | None = None) -> list[dg.AssetCheckResult]:
    """One result per check over every given partition: passed, violations, and the first failing days."""
    totals = {c.name: 0 for c in checks}
    bad_days: dict[str, list[str]] = {c.name: [] for c in checks}
    examples: dict[str, list[str]] = {c.name: [] for c in checks}
    n = 0
    for day in days:
        part = lake.read_partition(data_dir, table, account, day)
        n += 1
        for check, rule in zip(checks, rules(part, day), strict=True):
            if rule.violations:
                totals[check.name] += rule.violations
                bad_days[check.name].append(day.isoformat())
                examples[check.name] += rule.examples[: max(0, 3 - len(examples[check.name]))]
    out = []
    for c in checks:
        key = dg.AssetCheckKey(dg.AssetKey(table), c.name)
        if selected is not None and key not in selected:
            continue
        out.append(dg.AssetCheckResult(
            asset_key=table, check_name=c.name, passed=totals[c.name] == 0, severity=c.severity,
            metadata={"partitions_checked": n, "violations": totals[c.name],
                      "failing_days": ", ".join(bad_days[c.name][:10]) or "none",
                      "examples": "; ".join(examples[c.name]) or "none"}))
    return out

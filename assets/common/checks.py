"""Asset checks of lake partitions: the rules of :mod:`pipeline.quality` on every partition a run writes.

Spot runs hand each partition to the checks as the exact table the atomic writer stored (reading 730 files back
cost 40 % of Dagster's overhead on a two-year backfill); the export parser writes its partitions itself, so those
are read back from the lake.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pyarrow as pa

from pipeline import quality
from pipeline.futures.reconcile import Reconciliation
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
    Check(
        "decimals_non_negative",
        "prices and quantities are non-negative (cummulative_quote_qty < 0 is "
        "Binance's 'not available' for old orders and is allowed)",
    ),
    # Binance keeps adding enum values (docs/binance-facts.md §Order objects): an unknown one is worth a look,
    # not a failed run.
    Check("enums_known", "status and type belong to their documented enums", dg.AssetCheckSeverity.WARN),
)
ORDER_LIST_CHECKS = (
    Check("unique_order_list_id", "order_list_id is unique within each partition"),
    Check("transaction_time_in_partition_day", "every transaction_time lies inside its partition's UTC day"),
)


def rest_equals_export(rows: str) -> Check:
    """The check of a futures REST tail against the exports (pipeline/futures/reconcile.py)."""
    return Check(
        "rest_equals_export",
        f"on the days REST and an export both cover, the same {rows} with the same decimals and times; every "
        "mismatch is listed with its row",
    )


def reconciliation_result(asset: str, check: Check, report: Reconciliation) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=check.name,
        passed=not report.mismatches,
        severity=check.severity,
        metadata=report.metadata(),
    )


def specs(asset: str, checks: Sequence[Check], *, blocking: bool = True) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            c.name,
            asset=asset,
            description=c.description,
            blocking=blocking and c.severity == dg.AssetCheckSeverity.ERROR,
        )
        for c in checks
    ]


def order_list_rules(table: pa.Table, day: date) -> list[quality.RuleResult]:
    return [quality.duplicate_keys(table, ["order_list_id"]), quality.time_outside_day(table, day, "transaction_time")]


class RuleTally:
    """Runs a table's rules on each partition as it is written and sums them up into one result per check."""

    def __init__(self, table: str, rules: Rules, checks: Sequence[Check]) -> None:
        self.table, self.rules, self.checks = table, rules, checks
        self.partitions = 0
        self.violations = {c.name: 0 for c in checks}
        self.bad_days: dict[str, list[str]] = {c.name: [] for c in checks}
        self.examples: dict[str, list[str]] = {c.name: [] for c in checks}

    def add(self, day: date, data: pa.Table) -> None:
        self.partitions += 1
        for check, rule in zip(self.checks, self.rules(data, day), strict=True):
            if rule.violations:
                self.violations[check.name] += rule.violations
                self.bad_days[check.name].append(day.isoformat())
                self.examples[check.name] += rule.examples[: max(0, 3 - len(self.examples[check.name]))]

    def results(self, selected: set[dg.AssetCheckKey] | None = None) -> list[dg.AssetCheckResult]:
        out = []
        for c in self.checks:
            if selected is not None and dg.AssetCheckKey(dg.AssetKey(self.table), c.name) not in selected:
                continue
            out.append(
                dg.AssetCheckResult(
                    asset_key=self.table,
                    check_name=c.name,
                    passed=self.violations[c.name] == 0,
                    severity=c.severity,
                    metadata={
                        "partitions_checked": self.partitions,
                        "violations": self.violations[c.name],
                        "failing_days": ", ".join(self.bad_days[c.name][:10]) or "none",
                        "examples": "; ".join(self.examples[c.name]) or "none",
                    },
                )
            )
        return out


def tally_files(
    data_dir: Path, table: str, account: str, days: Iterable[date], rules: Rules, checks: Sequence[Check]
) -> RuleTally:
    """The rules over partitions read back from the lake (for writers whose tables we never hold in memory)."""
    tally = RuleTally(table, rules, checks)
    for day in days:
        tally.add(day, lake.read_partition(data_dir, table, account, day))
    return tally

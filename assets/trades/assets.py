"""The REST tails of USDⓈ-M and PM trades (``futures_trades``, ``pm_um_trades``) and income (``futures_income``,
``pm_um_income``): daily partitions with their checks.

Thin on purpose: planning, fetching and writing live in :mod:`pipeline.trades.futures_tail`; this module passes the
resources in and turns the results into Dagster events.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import dagster as dg

from assets.common import checks
from assets.common.failures import TRANSIENT_RETRY, transient_only
from assets.common.resources import BinanceResource, LakeResource
from pipeline import quality
from pipeline.futures.account_tails import trades_or_income_tail
from pipeline.times import days_between
from pipeline.trades.futures_tail import FuturesTailResult

GROUP = "trades"
POOL = "binance_futures"  # REST weight is per IP and host: one futures REST step at a time
TRADE_CHECKS = (
    checks.Check("unique_symbol_trade_id", "(symbol, trade_id) is unique within each partition"),
    checks.Check("time_in_partition_day", "every trade's time lies inside its partition's UTC day"),
)
INCOME_CHECKS = (
    checks.Check("unique_income_key", "(income_type, tran_id, asset) is unique within each partition"),
    checks.Check("time_in_partition_day", "every record's time lies inside its partition's UTC day"),
)
RECONCILED = {
    "trades": checks.rest_equals_export("trades (order, side, every decimal, commission asset, time)"),
    "income": checks.rest_equals_export("income records (symbol, income, info, trade id, time)"),
}
ADD_UP = checks.Check(
    "trades_add_up_to_orders",
    "for every filled order whose fills lie on covered days, sum(trades.qty) = executed_qty",
)


def trade_rules(table, day: date) -> list[quality.RuleResult]:
    return [quality.duplicate_keys(table, ["symbol", "trade_id"]), quality.time_outside_day(table, day, "time")]


def income_rules(table, day: date) -> list[quality.RuleResult]:
    keys = ["income_type", "tran_id", "asset"]
    return [quality.duplicate_keys(table, keys), quality.time_outside_day(table, day, "time")]


@dataclass(frozen=True)
class TailAsset:
    market: str
    kind: str  # trades | income

    @property
    def name(self) -> str:
        return {"usdm": "futures", "pm_um": "pm_um"}[self.market] + "_" + self.kind


TAIL_ASSETS = tuple(TailAsset(m, k) for k in ("trades", "income") for m in ("usdm", "pm_um"))


def _events(spec: TailAsset, result: FuturesTailResult, start: date, end: date) -> Iterator[dg.AssetMaterialization]:
    days = sorted(d for d in result.written if start <= d <= end)
    for day in days:
        meta: dict = {"row_count": result.written[day]}
        if day == days[-1]:
            meta |= {"run_partitions": len(days), **result.metadata()}
        yield dg.AssetMaterialization(asset_key=spec.name, partition=day.isoformat(), metadata=meta)


def build_tail_asset(spec: TailAsset, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    rules: Callable = trade_rules if spec.kind == "trades" else income_rules
    table_checks = TRADE_CHECKS if spec.kind == "trades" else INCOME_CHECKS
    extra = (ADD_UP,) if spec.kind == "trades" else ()

    def body(context: dg.AssetExecutionContext, binance: BinanceResource, lake: LakeResource) -> Iterator:
        rng = context.partition_key_range
        start, end = date.fromisoformat(rng.start), date.fromisoformat(rng.end)
        tally = checks.RuleTally(spec.name, rules, table_checks)
        result = trades_or_income_tail(
            binance.client,
            spec.market,
            spec.kind,
            data_dir=lake.path,
            account=lake.account,
            days=days_between(start, end),
            on_written=tally.add,
            log=context.log.info,
        )
        yield from _events(spec, result, start, end)
        yield from tally.results(set(context.selected_asset_check_keys))
        yield checks.reconciliation_result(spec.name, RECONCILED[spec.kind], result.reconciliation)
        if spec.kind == "trades":
            missing = [m for m in result.mismatches if m.trades_qty < m.executed_qty]
            yield dg.AssetCheckResult(
                asset_key=spec.name,
                check_name=ADD_UP.name,
                passed=not result.mismatches,
                severity=dg.AssetCheckSeverity.ERROR if missing else dg.AssetCheckSeverity.WARN,
                metadata={"mismatched_orders": len(result.mismatches), "trades_missing": len(missing)},
            )

    orders = "futures_orders" if spec.market == "usdm" else "pm_um_orders"
    what = (
        f"{spec.market} fills (userTrades), planned from the lake's filled orders of {orders}"
        if spec.kind == "trades"
        else f"{spec.market} income ledger (income: realized PnL, funding, commissions, transfers, ...)"
    )
    return dg.multi_asset(
        specs=[
            dg.AssetSpec(
                spec.name,
                deps=[orders, f"{orders}_rest"] if spec.kind == "trades" else [],
                kinds={"parquet"},
                group_name=GROUP,
                skippable=True,
                description=f"{what}, one partition per UTC day, for the days REST still serves (90 days); older "
                "days come from the exports.",
            )
        ],
        check_specs=checks.specs(spec.name, (*table_checks, *extra, RECONCILED[spec.kind]), blocking=False),
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=POOL,
        retry_policy=TRANSIENT_RETRY,
        name=f"{spec.name}_rest",
    )(transient_only(body))

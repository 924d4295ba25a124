"""The ``spot_trades`` asset: the fills behind the spot orders, planned from the lake's filled orders.

Thin on purpose: planning, fetching, writing and the repair live in :mod:`pipeline.trades`; this asset passes the
resources in and turns the result into metadata and check results.
"""

from collections.abc import Iterator
from datetime import date

import dagster as dg

from assets.common import checks
from assets.common.failures import transient_only
from assets.common.resources import BinanceResource, LakeResource
from assets.spot.assets import GROUP, POOL, RETRY
from pipeline import quality
from pipeline.trades.spot_backfill import backfill_spot_trades

TRADE_CHECKS = (
    checks.Check("unique_symbol_trade_id", "(symbol, trade_id) is unique within each partition"),
    checks.Check("time_in_partition_day", "every trade's time lies inside its partition's UTC day"),
)
ADD_UP = checks.Check(
    "trades_add_up_to_orders",
    "for every filled spot order whose fills lie on covered days, sum(trades.qty) = executed_qty (an order whose "
    "stored version is older than its trades only warns: the next orders run brings its newer version)",
)


def trade_rules(table, day: date) -> list[quality.RuleResult]:
    return [quality.duplicate_keys(table, ["symbol", "trade_id"]), quality.time_outside_day(table, day, "time")]


def spot_trades_body(context: dg.AssetExecutionContext, binance: BinanceResource, lake: LakeResource) -> Iterator:
    rng = context.partition_key_range
    start, end = date.fromisoformat(rng.start), date.fromisoformat(rng.end)
    tally = checks.RuleTally("spot_trades", trade_rules, TRADE_CHECKS)
    api = binance.client.spot_api(binance.transport)
    result = backfill_spot_trades(
        api,
        data_dir=lake.path,
        account=lake.account,
        start=start,
        end=end,
        now_ms=binance.client.spot.server_time(),
        transport=binance.transport,
        on_written=tally.add,
        log=context.log.info,
    )
    summary = result.metadata()
    days = sorted(d for d in result.written if start <= d <= end)
    for day in days:
        meta: dict = {"row_count": result.written[day]}
        if day == days[-1]:
            meta |= {"run_partitions": len(days), "run_rows": sum(result.written[d] for d in days), **summary}
        yield dg.AssetMaterialization(asset_key="spot_trades", partition=day.isoformat(), metadata=meta)
    yield from tally.results(set(context.selected_asset_check_keys))
    missing = [m for m in result.mismatches if m.trades_qty < m.executed_qty]
    yield dg.AssetCheckResult(
        asset_key="spot_trades",
        check_name=ADD_UP.name,
        passed=not result.mismatches,
        severity=dg.AssetCheckSeverity.ERROR if missing else dg.AssetCheckSeverity.WARN,
        metadata={
            "mismatched_orders": len(result.mismatches),
            "trades_missing": len(missing),
            "examples": "; ".join(f"{m.symbol} {m.order_id}" for m in result.mismatches[:5]) or "none",
        },
    )


def build_spot_trades(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    return dg.multi_asset(
        specs=[
            dg.AssetSpec(
                "spot_trades",
                deps=["spot_orders"],
                kinds={"parquet"},
                group_name=GROUP,
                skippable=True,
                description="Spot fills (myTrades), one partition per UTC day of the trade. Planned from the lake's "
                "filled orders: per symbol the cheapest of orderId calls, 24 h windows and fromId cursors.",
            )
        ],
        check_specs=checks.specs("spot_trades", (*TRADE_CHECKS, ADD_UP), blocking=False),
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=POOL,
        retry_policy=RETRY,
        name="spot_trades_history",
    )(transient_only(spot_trades_body))

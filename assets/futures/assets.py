"""The REST tails of USDⓈ-M and PM UM orders (assets ``futures_orders_rest``, ``pm_um_orders_rest``): daily
partitions of the ``futures_orders`` / ``pm_um_orders`` tables the exports also write, with their checks.

Thin on purpose: discovery, fetching, refreshing and writing live in :mod:`pipeline.futures`; this module passes the
resources in and turns the results into Dagster events.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import dagster as dg

from assets.common import checks
from assets.common.resources import BinanceResource, LakeResource
from pipeline import quality
from pipeline.futures.account_tails import orders_tail
from pipeline.futures.orders_tail import OrdersTailResult
from pipeline.storage.schemas import futures_orders
from pipeline.times import days_between

GROUP = "futures_rest"
POOL = "binance_futures"  # REST weight is per IP and host: one futures REST step at a time
RETRY = dg.RetryPolicy(max_retries=1, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
RECONCILED = checks.rest_equals_export(
    "orders (status and update_time too; an order that changed between the two reads is no mismatch)"
)


@dataclass(frozen=True)
class OrdersAsset:
    market: str

    @property
    def name(self) -> str:
        return f"{self.table}_rest"

    @property
    def table(self) -> str:
        return futures_orders.MARKETS[self.market]


ORDER_ASSETS = (OrdersAsset("usdm"), OrdersAsset("pm_um"))


def _events(spec: OrdersAsset, result: OrdersTailResult) -> Iterator[dg.AssetMaterialization]:
    days = sorted({*result.complete, *result.partial})
    for day in days:
        meta: dict = {"rows_in_partition": result.written.get(day, 0), "complete": day in result.complete}
        if day == days[-1]:
            meta |= {"run_partitions": len(days), **result.metadata()}
        yield dg.AssetMaterialization(asset_key=spec.name, partition=day.isoformat(), metadata=meta)


def build_orders_asset(
    spec: OrdersAsset, partitions: dg.PartitionsDefinition, configured_symbols: tuple[str, ...] = ()
) -> dg.AssetsDefinition:
    def body(context: dg.AssetExecutionContext, binance: BinanceResource, lake: LakeResource) -> Iterator:
        rng = context.partition_key_range
        start, end = date.fromisoformat(rng.start), date.fromisoformat(rng.end)
        tally = checks.RuleTally(spec.name, quality.futures_order_rules, checks.ORDER_CHECKS)
        result = orders_tail(
            binance.client,
            spec.market,
            data_dir=lake.path,
            account=lake.account,
            days=days_between(start, end),
            configured=configured_symbols,
            on_written=tally.add,
            log=context.log.info,
        )
        yield from _events(spec, result)
        yield from tally.results(set(context.selected_asset_check_keys))
        yield checks.reconciliation_result(spec.name, RECONCILED, result.reconciliation)

    return dg.multi_asset(
        specs=[
            dg.AssetSpec(
                spec.name,
                kinds={"parquet"},
                group_name=GROUP,
                skippable=True,
                description=f"{spec.market} orders from REST allOrders into {spec.table}, one partition per UTC day "
                "REST still serves (90 days; 3 for zero-fill cancels), the lake's open orders refreshed; older "
                "days come from the exports",
            )
        ],
        check_specs=checks.specs(spec.name, (*checks.ORDER_CHECKS, RECONCILED), blocking=False),
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=POOL,
        retry_policy=RETRY,
        name=f"{spec.name}_tail",
    )(body)

"""Spot assets: the symbol activity index, daily order / order-list partitions, and the open-orders snapshot.

Thin on purpose: discovery, planning, fetching and writing live in :mod:`pipeline.spot`; these assets pass the
resources in and turn the results into Dagster metadata and check results.
"""

from collections.abc import Iterator
from datetime import date

import dagster as dg

from assets.common import checks
from assets.common.failures import TRANSIENT_RETRY, transient_only
from assets.common.resources import BinanceResource, LakeResource
from assets.spot.resources import SpotResource
from pipeline import progress, quality
from pipeline.spot import SymbolIndex, discover_symbols
from pipeline.spot.backfill import backfill_spot, lake_symbols, snapshot_open_orders
from pipeline.times import fmt_ms

GROUP = "spot"
POOL = "binance_spot"  # Binance limits weight per IP: one spot step at a time (deploy/dagster.yaml)
RETRY = TRANSIENT_RETRY  # with transient_only on every body: a rejected key fails at once, a 5xx burst is retried


class SpotOrdersConfig(dg.Config):
    """``backfill``: the planner picks the cheaper of 24 h windows and orderId cursors per symbol.
    ``daily``: plain 24 h windows over the active symbols, no probe (what the daily schedule runs)."""

    mode: str = "backfill"


def _tell(context: dg.AssetExecutionContext, line: str) -> None:
    """Discovery prints its cost before a probe: into the run's log and onto the terminal of `orderlake backfill`."""
    context.log.info(line)
    progress.notice(line)


def _index_table(index: SymbolIndex) -> str:
    rows = sorted((a for a in index.symbols.values() if a.order_count), key=lambda a: a.symbol)
    lines = [
        "| symbol | status | first order | last order | last update | orders | evidence |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {a.symbol} | {a.status} | {fmt_ms(a.first_order_time)} | {fmt_ms(a.last_order_time)} | "
        f"{fmt_ms(a.last_update_time)} | {a.order_count}{'' if a.count_exact else '+'} | "
        f"{', '.join(a.evidence)} |"
        for a in rows
    ]
    return "\n".join(lines)


@dg.asset(
    group_name=GROUP,
    kinds={"python", "json"},
    pool=POOL,
    retry_policy=RETRY,
    description="Which spot symbols hold orders, from when to when, and how we know (balances, the lake, "
    "ORDERLAKE_SPOT_SYMBOLS, a probe). Stored in $ORDERLAKE_DATA_DIR/state/spot_symbols.json.",
)
@transient_only
def spot_symbol_index(
    context: dg.AssetExecutionContext, binance: BinanceResource, lake: LakeResource, spot: SpotResource
) -> dg.MaterializeResult:
    index = SymbolIndex.load(lake.path, lake.account)
    before = binance.spot_weight_spent()
    found = discover_symbols(
        binance.client.spot_api(binance.transport),
        index,
        explicit=spot.explicit,
        lake_symbols=lake_symbols(lake.path, lake.account),
        probe=spot.probe_mode,
        log=lambda line: _tell(context, line),
    )
    return dg.MaterializeResult(
        metadata={
            "symbols": len(found.symbols),
            "listed": found.listed,
            "probed": found.probed,
            "full_probe": found.full_probe,
            "weight": binance.spot_weight_spent() - before,
            "estimate": found.estimate,
            "blind_spots": [b.to_dict() for b in found.blind_spots],
            "index": dg.MetadataValue.md(_index_table(index)),
            "path": dg.MetadataValue.path(str(SymbolIndex.default_path(lake.path))),
        }
    )


TABLE_RULES = {
    "spot_orders": (quality.spot_order_rules, checks.ORDER_CHECKS),
    "spot_order_lists": (checks.order_list_rules, checks.ORDER_LIST_CHECKS),
}


def spot_order_history(
    context: dg.AssetExecutionContext,
    config: SpotOrdersConfig,
    binance: BinanceResource,
    lake: LakeResource,
    spot: SpotResource,
):
    if config.mode not in ("backfill", "daily"):
        raise dg.Failure(f"spot mode must be 'backfill' or 'daily', not {config.mode!r}", allow_retries=False)
    rng = context.partition_key_range
    start, end = date.fromisoformat(rng.start), date.fromisoformat(rng.end)
    selected = {k.to_user_string() for k in context.selected_asset_keys}
    tallies = {t: checks.RuleTally(t, *TABLE_RULES[t]) for t in selected}
    result = backfill_spot(
        binance.client.spot_api(binance.transport),
        data_dir=lake.path,
        account=lake.account,
        start=start,
        end=end,
        transport=binance.transport,
        mode=config.mode,
        explicit=spot.explicit,
        probe=spot.probe_mode,
        orders="spot_orders" in selected,
        order_lists="spot_order_lists" in selected,
        weight_used=binance.spot_weight_spent,
        on_written=lambda t, day, rows: tallies[t].add(day, rows),
        log=context.log.info,
    )
    summary = result.metadata()
    context.instance.add_run_tags(
        context.run_id,
        {
            "orderlake/spot_plan_weight": str(summary["plan"]["est_weight"]),
            "orderlake/spot_weight_spent": str(summary["weight_spent"]),
        },
    )
    for table, written in (("spot_orders", result.orders_written), ("spot_order_lists", result.lists_written)):
        if table in selected:
            yield from _partition_materializations(table, written, summary)
            yield from tallies[table].results(set(context.selected_asset_check_keys))


def build_spot_order_history(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """``spot_orders`` and ``spot_order_lists`` over ``partitions``, one multi-asset: one planner run fetches both."""
    return dg.multi_asset(
        specs=[
            # skippable: the body reports one materialization per partition itself (with that day's row count)
            dg.AssetSpec(
                "spot_orders",
                deps=[spot_symbol_index],
                kinds={"parquet"},
                group_name=GROUP,
                skippable=True,
                description="Spot orders (allOrders), one partition per UTC day of the order's last update. "
                "An order updated later appears again in a later partition: every version is kept.",
            ),
            dg.AssetSpec(
                "spot_order_lists",
                deps=[spot_symbol_index],
                kinds={"parquet"},
                group_name=GROUP,
                skippable=True,
                description="Spot order lists (OCO/OTO, allOrderList) per UTC day of their transaction time.",
            ),
        ],
        check_specs=checks.specs("spot_orders", checks.ORDER_CHECKS)
        + checks.specs("spot_order_lists", checks.ORDER_LIST_CHECKS),
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),  # the planner needs the whole range to price a cursor
        can_subset=True,
        pool=POOL,
        retry_policy=RETRY,
    )(transient_only(spot_order_history))


def _partition_materializations(
    table: str, written: dict[date, int], summary: dict
) -> Iterator[dg.AssetMaterialization]:
    """One event per day with that day's rows; the run's plan and weight ride on the last day only, so a
    two-year range does not store the same summary 730 times (the run tags carry it too)."""
    days = sorted(written)
    for day in days:
        meta: dict = {"row_count": written[day]}
        if day == days[-1]:
            meta |= {
                "run_partitions": len(days),
                "run_rows": sum(written.values()),
                "run_empty_partitions": sum(1 for n in written.values() if n == 0),
                **summary,
            }
        yield dg.AssetMaterialization(asset_key=table, partition=day.isoformat(), metadata=meta)


@dg.asset(
    group_name=GROUP,
    kinds={"parquet"},
    pool=POOL,
    retry_policy=RETRY,
    deps=[spot_symbol_index],
    description="Snapshot of the open spot orders right now (openOrders / openOrderLists): what a trader "
    "checks first. The snapshot's UTC day partition holds the newest snapshot of that day.",
)
@transient_only
def spot_open_orders(
    context: dg.AssetExecutionContext, binance: BinanceResource, lake: LakeResource
) -> dg.MaterializeResult:
    snap = snapshot_open_orders(
        binance.client.spot_api(binance.transport),
        data_dir=lake.path,
        account=lake.account,
        transport=binance.transport,
        log=context.log.info,
    )
    return dg.MaterializeResult(
        metadata={
            "row_count": snap.orders,
            "open_order_lists": len(snap.order_lists),
            "open_order_list_ids": [ol.get("orderListId") for ol in snap.order_lists],
            "weight": snap.weight,
            "partition": snap.day.isoformat(),
            "path": dg.MetadataValue.path(str(snap.path)),
        }
    )

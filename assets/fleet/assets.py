"""The lake tables of a many-account deployment, partitioned by account x UTC day.

Thin: the spot planner and fetch (:func:`pipeline.spot.backfill.backfill_spot`) and the export chain
(:func:`pipeline.fleet.export_range`) do the work, once per account of the run, each with that account's client,
ledger rows and quota. A run's accounts are independent: one account's failure is reported after the others' days
are written and materialized (:func:`pipeline.fleet.per_account`).
"""

import time
from collections.abc import Iterator
from datetime import date

import dagster as dg

from assets.common.resources import BinanceResource
from assets.fleet.resources import FleetResource
from pipeline.accounts import Fleet
from pipeline.binance.exports import EXPORT_ENDPOINTS
from pipeline.errors import OrderlakeError
from pipeline.exports.ledger import LedgerEntry
from pipeline.fleet import AccountDays, account_ranges, export_range, per_account
from pipeline.spot.backfill import backfill_spot
from pipeline.times import days_between

ACCOUNT = "account"
DATE = "date"
ACCOUNT_TAG = "orderlake/account"  # the queued run coordinator limits runs per account on it (deploy/)
SPOT_POOL = "fleet_spot"  # every account's spot steps share the per-IP weight budget, not a step slot each
EXPORT_POOL = "fleet_export"
# (lake table, accounts-file market, export endpoint key)
EXPORT_TABLES = (("futures_orders", "usdm", ("usdm", "order")), ("pm_um_orders", "pm", ("pm_um", "order")))


def fleet_partitions(fleet: Fleet) -> dg.MultiPartitionsDefinition:
    """account x UTC day, from the earliest start date of the accounts file (an account's earlier days are empty)."""
    return dg.MultiPartitionsDefinition(
        {
            ACCOUNT: dg.StaticPartitionsDefinition(list(fleet.names)),
            DATE: dg.DailyPartitionsDefinition(start_date=fleet.first_day.isoformat(), timezone="UTC"),
        }
    )


def partition(account: str, day: date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({ACCOUNT: account, DATE: day.isoformat()})


def run_ranges(context: dg.AssetExecutionContext, fleet: FleetResource, market: str) -> list[AccountDays]:
    """The run's (account, day) partitions as contiguous ranges, without an account's days before its start date
    and without the accounts that do not trade ``market``."""
    pairs = []
    partitions = context.assets_def.partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    for key in context.partition_keys:
        dims = partitions.get_partition_key_from_str(str(key)).keys_by_dimension
        account, day = dims[ACCOUNT], date.fromisoformat(dims[DATE])
        if market in fleet.account(account).markets and day >= fleet.start_date(account):
            pairs.append((account, day))
    return account_ranges(pairs)


def close_client(binance: BinanceResource) -> None:
    binance.teardown_after_execution(None)  # type: ignore[arg-type]


def materializations(table: str, account: str, written: dict[date, int]) -> Iterator[dg.AssetMaterialization]:
    for day in sorted(written):
        yield dg.AssetMaterialization(
            asset_key=table, partition=partition(account, day), metadata={"row_count": written[day], ACCOUNT: account}
        )


def export_rows(entries: list[LedgerEntry], start: date, end: date) -> dict[date, int]:
    """Rows per day of ``start``..``end`` that the ingested exports wrote (0 for a day they cover without rows)."""
    rows = {d: 0 for d in days_between(start, end)}
    for e in entries:
        for day, n in (e.partitions or {}).items():
            if date.fromisoformat(day) in rows:
                rows[date.fromisoformat(day)] = n
    return rows


def fleet_spot(context: dg.AssetExecutionContext, fleet: FleetResource):
    selected = {k.to_user_string() for k in context.selected_asset_keys}
    lake = fleet.lake_template

    def one(rng: AccountDays):
        binance, spot = fleet.binance(rng.account), fleet.spot(rng.account)
        try:
            return backfill_spot(
                binance.client.spot_api(binance.transport),
                data_dir=lake.path,
                account=rng.account,
                start=rng.start,
                end=rng.end,
                transport=binance.transport,  # type: ignore[arg-type]
                explicit=spot.explicit,
                probe=spot.probe_mode,
                orders="spot_orders" in selected,
                order_lists="spot_order_lists" in selected,
                weight_used=binance.spot_weight_spent,
                log=context.log.info,
            )
        finally:
            close_client(binance)

    try:
        for rng, result in per_account(run_ranges(context, fleet, "spot"), one):
            context.log.info(f"{rng.account}: spot {rng.start}..{rng.end}, weight {result.weight_spent}")
            for table, written in (("spot_orders", result.orders_written), ("spot_order_lists", result.lists_written)):
                if table in selected:
                    yield from materializations(table, rng.account, written)
    except OrderlakeError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from exc


def build_fleet_spot(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    return dg.multi_asset(
        name="fleet_spot",
        specs=[
            dg.AssetSpec(
                "spot_orders",
                kinds={"parquet"},
                group_name="fleet",
                skippable=True,
                description="Spot orders (allOrders) of every account, per account and UTC day of the last update.",
            ),
            dg.AssetSpec(
                "spot_order_lists",
                kinds={"parquet"},
                group_name="fleet",
                skippable=True,
                description="Spot order lists (OCO/OTO) of every account, per account and UTC day.",
            ),
        ],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),  # the planner prices a cursor over the account's range
        can_subset=True,
        pool=SPOT_POOL,
    )(fleet_spot)


def build_fleet_export(table: str, market: str, endpoint_key: tuple[str, str], partitions) -> dg.AssetsDefinition:
    endpoint = EXPORT_ENDPOINTS[endpoint_key]

    @dg.asset(
        name=table,
        kinds={"parquet"},
        group_name="fleet",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),  # one <=1-year download id covers an account's range
        pool=EXPORT_POOL,
        output_required=False,
        description=f"{market} orders of every account from the order-history exports: per account, the download "
        "ids its range needs (never one its ledger holds), waited for in the step, then partitioned by UTC day.",
    )
    def export_table(context: dg.AssetExecutionContext, fleet: FleetResource):
        def one(rng: AccountDays):
            binance = fleet.binance(rng.account)
            try:
                chain = fleet.export_chain(rng.account, binance)
                entries = export_range(chain, endpoint, rng.start, rng.end, sleep=time.sleep)
            finally:
                close_client(binance)
            return entries, export_rows(entries, rng.start, rng.end)

        try:
            for rng, (entries, rows) in per_account(run_ranges(context, fleet, market), one):
                ids = sorted({str(e.download_id) for e in entries})
                context.log.info(f"{rng.account}: {table} {rng.start}..{rng.end} from download id(s) {ids}")
                yield from materializations(table, rng.account, rows)
        except OrderlakeError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from exc

    return export_table


def build_fleet_assets(fleet: Fleet) -> list[dg.AssetsDefinition]:
    partitions = fleet_partitions(fleet)
    return [build_fleet_spot(partitions)] + [
        build_fleet_export(table, market, key, partitions) for table, market, key in EXPORT_TABLES
    ]

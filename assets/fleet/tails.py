"""The fleet's REST tails, per account x UTC day: USDⓈ-M and PM UM orders, trades and income of the days REST still
serves, so that an account's futures tables are a day old at most, not a month (its exports are monthly).

Thin: :mod:`pipeline.futures.account_tails` does the work, once per account of the run, with that account's client;
:func:`pipeline.fleet.per_account` keeps one account's failure from stopping another's.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import dagster as dg

from assets.fleet.assets import ACCOUNT, close_client, partition, run_ranges
from assets.fleet.resources import FleetResource
from pipeline.errors import OrderlakeError
from pipeline.fleet import AccountDays, per_account
from pipeline.futures.account_tails import orders_tail, trades_or_income_tail
from pipeline.storage.schemas import futures_orders
from pipeline.times import days_between

GROUP = "fleet_rest"
JOB = "fleet_rest_tails"
FUTURES_POOL = "fleet_futures"  # futures REST weight is per IP: every account's tails share it
MARKETS = {"usdm": "usdm", "pm": "pm_um"}  # accounts-file market -> the pipeline's market


@dataclass(frozen=True)
class FleetTail:
    market: str  # the accounts file's: usdm | pm
    kind: str  # orders | trades | income

    @property
    def name(self) -> str:
        prefix = {"usdm": "futures", "pm": "pm_um"}[self.market]
        return f"{prefix}_orders_rest" if self.kind == "orders" else f"{prefix}_{self.kind}"


FLEET_TAILS = tuple(FleetTail(m, k) for k in ("orders", "trades", "income") for m in MARKETS)


def _written(tail: FleetTail, result, rng: AccountDays) -> dict[date, int]:
    """Rows per day of the run's range that the tail wrote or found complete (0 rows is a fact, not a gap)."""
    served = set(result.complete) | set(result.partial) if tail.kind == "orders" else set(result.written)
    return {d: result.written.get(d, 0) for d in sorted(served) if rng.start <= d <= rng.end}


def build_fleet_tails_of(market: str, partitions: dg.MultiPartitionsDefinition) -> dg.AssetsDefinition:
    """One step per run for a market's three tails, in order: trades are planned from the orders just refreshed."""
    tails = [t for t in FLEET_TAILS if t.market == market]
    pipeline_market = MARKETS[market]

    def body(context: dg.AssetExecutionContext, fleet: FleetResource) -> Iterator[dg.AssetMaterialization]:
        lake = fleet.lake_template
        selected = {k.to_user_string() for k in context.selected_asset_keys}
        chosen = [t for t in tails if t.name in selected]

        def one(rng: AccountDays):
            binance = fleet.binance(rng.account)
            common = {"data_dir": lake.path, "account": rng.account, "days": days_between(rng.start, rng.end)}
            results = []
            try:
                for tail in chosen:
                    if tail.kind == "orders":
                        result = orders_tail(binance.client, pipeline_market, **common, log=context.log.info)
                    else:
                        result = trades_or_income_tail(
                            binance.client, pipeline_market, tail.kind, **common, log=context.log.info
                        )
                    results.append((tail, result))
            finally:
                close_client(binance)
            return results

        try:
            for rng, results in per_account(run_ranges(context, fleet, market), one):
                for tail, result in results:
                    written = _written(tail, result, rng)
                    context.log.info(f"{rng.account}: {tail.name} {rng.start}..{rng.end}, {len(written)} day(s)")
                    for day, rows in written.items():
                        yield dg.AssetMaterialization(
                            asset_key=tail.name,
                            partition=partition(rng.account, day),
                            metadata={"row_count": rows, ACCOUNT: rng.account},
                        )
        except OrderlakeError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from exc

    orders_table = futures_orders.MARKETS[pipeline_market]
    return dg.multi_asset(
        name=f"fleet_{orders_table.removesuffix('_orders')}_rest",
        specs=[
            dg.AssetSpec(
                t.name,
                deps=[orders_table] if t.kind == "trades" else [],
                kinds={"parquet"},
                group_name=GROUP,
                skippable=True,
                description=f"{market} {t.kind} of every account from REST, per account and UTC day, for the days "
                "REST still serves (90 days); older days come from the exports.",
            )
            for t in tails
        ],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        can_subset=True,
        pool=FUTURES_POOL,
    )(body)


def build_fleet_tails(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_fleet_tails_of(m, partitions) for m in MARKETS]

"""The fleet's trade and income exports, per account x UTC day: the days REST no longer serves whole (older than its
90 days), so that a many-account deployment holds every account's fills and income over its whole history.

Thin: :func:`pipeline.fleet.export_range` does the chain (the ledger's plan, pacing, the link wait, retrieval,
ingest) per account of the run, with that account's client and quota; the range is clipped to the days REST cannot
give (:func:`pipeline.trades.futures_tail.last_day_beyond_rest`), so no scarce id is spent on what REST serves.
"""

import time

import dagster as dg

from assets.exports.assets import FILL_CHAINS, ExportAssets
from assets.fleet.assets import EXPORT_POOL, close_client, export_rows, materializations, run_ranges
from assets.fleet.resources import FleetResource
from assets.fleet.tails import MARKETS
from pipeline.errors import OrderlakeError
from pipeline.fleet import AccountDays, export_range, per_account
from pipeline.trades.futures_tail import last_day_beyond_rest

GROUP = "fleet_fills"
JOB = "fleet_fill_exports"
FILE_MARKET = {pipeline: file for file, pipeline in MARKETS.items()}  # the pipeline's market -> the accounts file's


def build_fleet_fill(spec: ExportAssets, partitions: dg.MultiPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.table_asset,
        kinds={"parquet"},
        group_name=GROUP,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),  # one <=1-year download id covers an account's range
        pool=EXPORT_POOL,
        output_required=False,
        description=f"{spec.market} {spec.kind} records of every account from the {spec.kind} exports ({spec.table}), "
        "per account and UTC day, for the days older than REST's retention only: SPENDS QUOTA (5 ids a month per "
        "endpoint and account, shared with the website), never for a day REST serves or the ledger holds.",
    )
    def fill(context: dg.AssetExecutionContext, fleet: FleetResource):
        def one(rng: AccountDays):
            binance = fleet.binance(rng.account)
            try:
                chain = fleet.export_chain(rng.account, binance)
                last = min(rng.end, last_day_beyond_rest(spec.kind, chain.client.futures.server_time()))
                if last < rng.start:
                    return None, last
                return export_range(chain, spec.endpoint, rng.start, last, sleep=time.sleep), last
            finally:
                close_client(binance)

        try:
            for rng, (entries, last) in per_account(run_ranges(context, fleet, FILE_MARKET[spec.market]), one):
                if entries is None:
                    context.log.info(f"{rng.account}: REST serves {rng.start}..{rng.end} whole; no {spec.kind} id")
                    continue
                ids = sorted({str(e.download_id) for e in entries})
                context.log.info(f"{rng.account}: {spec.table} {rng.start}..{last} from download id(s) {ids}")
                yield from materializations(spec.table_asset, rng.account, export_rows(entries, rng.start, last))
        except OrderlakeError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from exc

    return fill


def build_fleet_fills(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_fleet_fill(spec, partitions) for spec in FILL_CHAINS]

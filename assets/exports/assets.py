"""USDⓈ-M and Portfolio-Margin UM order-history exports as a chain of daily-partitioned assets.

``<prefix>_exports`` (download ids requested for these days) -> ``<prefix>_export_links`` (link ready) ->
``<prefix>_export_files`` (raw file stored) -> ``<table>`` (daily lake partitions).

Only the first asset spends quota. It is run by hand, by ``orderlake backfill`` or by the export-needs schedule
(:mod:`assets.futures.definitions`), never retried automatically. The link-polling sensor watches the ledger and,
when Binance reports a file ready, launches the retrieval run for exactly that download id's days (``run_key`` =
the download id). Everything else is generic over (market, kind): adding trade or income exports is one more
:class:`ExportAssets`.
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import dagster as dg

from assets.common import checks
from assets.common.partitions import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG
from assets.exports.resources import ExportsResource
from assets.trades.exports import FUTURES_PREFIXES, fill_table_checks
from pipeline import quality
from pipeline.binance.exports import EXPORT_ENDPOINTS, ExportEndpoint
from pipeline.binance.facts import EXPORT_CREATE_WEIGHT
from pipeline.errors import OrderlakeError
from pipeline.exports import checks as export_checks
from pipeline.exports.chain import ExportChain
from pipeline.exports.errors import LinkExpired
from pipeline.exports.ledger import LedgerEntry
from pipeline.exports.retrieval import table_for
from pipeline.exports.states import READY, LedgerState
from pipeline.storage import lake
from pipeline.times import day_of, days_between, fmt_ms
from pipeline.trades.futures_tail import last_day_beyond_rest

POOL = "binance_futures_export"  # one create call at a time across runs: each costs 1000-1500 weight
DOWNLOAD_ID_TAG = "orderlake/download_id"
# What only an export can be checked for (pipeline.exports.checks); the per-day rules are checks.ORDER_CHECKS.
EXPORT_CHECKS = (
    checks.Check("rows_parsed_equal_data_lines", "the CSV reader produced one row per data line of the export file"),
    checks.Check("partitions_as_recorded", "each day an export wrote holds at least the rows the ledger recorded"),
    # An order's versions may lie on several days (kept on purpose, the catalog shows the latest); the same version
    # twice is a fault worth knowing but no reason to block.
    checks.Check(
        "unique_order_id_account",
        "each order version (order_id, update_time) is stored once in the account's table",
        dg.AssetCheckSeverity.WARN,
    ),
)


@dataclass(frozen=True)
class ExportAssets:
    """Names of one (market, kind) chain."""

    market: str
    kind: str
    prefix: str  # e.g. "futures_order" -> futures_order_exports, futures_order_export_links, ...

    @property
    def endpoint(self) -> ExportEndpoint:
        return EXPORT_ENDPOINTS[(self.market, self.kind)]

    @property
    def table(self) -> str:
        return table_for(self.market, self.kind)

    @property
    def table_asset(self) -> str:
        """The asset that writes the table: the table itself for orders; for trades and income the REST tail owns
        that name (assets/trades), so the export's writer is ``<table>_from_exports``."""
        return self.table if self.kind == "order" else f"{self.table}_from_exports"

    @property
    def group(self) -> str:
        return f"{self.market}_exports"

    @property
    def requests(self) -> str:
        return f"{self.prefix}_exports"

    @property
    def links(self) -> str:
        return f"{self.prefix}_export_links"

    @property
    def files(self) -> str:
        return f"{self.prefix}_export_files"

    @property
    def retrieval_job(self) -> str:
        return f"{self.prefix}_export_retrieval"


CHAINS = (ExportAssets("usdm", "order", "futures_order"), ExportAssets("pm_um", "order", "pm_um_order"))
# Trade and income exports: only for days older than REST's retention (assets/trades/exports.py)
FILL_CHAINS = tuple(ExportAssets(m, k, f"{p}_{k}") for k in ("trade", "income") for m, p in FUTURES_PREFIXES)
ALL_CHAINS = CHAINS + FILL_CHAINS


def _range(context: dg.AssetExecutionContext) -> tuple[date, date]:
    rng = context.partition_key_range
    return date.fromisoformat(rng.start), date.fromisoformat(rng.end)


def _run_range(context: dg.AssetExecutionContext) -> tuple[date, date] | None:
    """The days a run targets, from its tags (also seen by the unpartitioned assets of a partitioned run)."""
    tags = context.run.tags
    start = tags.get(RANGE_START_TAG) or tags.get(PARTITION_TAG)
    end = tags.get(RANGE_END_TAG) or tags.get(PARTITION_TAG)
    return (date.fromisoformat(start), date.fromisoformat(end)) if start and end else None


def _quota_metadata(chain: ExportChain, endpoint: ExportEndpoint) -> dict[str, object]:
    q = chain.quota(endpoint)
    return {
        "quota_month": q.month,
        "quota_used": q.used,
        "quota_remaining": q.remaining,
        "quota_limit": q.limit,
        "quota_resets": fmt_ms(q.resets_at_ms),
    }


def _entries_for_run(context: dg.AssetExecutionContext, chain: ExportChain, spec: ExportAssets) -> list[LedgerEntry]:
    """The download id the sensor launched this run for; in a run started by hand, every ready export that covers
    the run's days (all ready exports for the unpartitioned link/file assets). Days of a partitioned run that no
    ready export covers are an error: retrieving cannot invent them."""
    did = context.run.tags.get(DOWNLOAD_ID_TAG)
    if did:
        return [chain.ledger.by_download_id(did)]
    entries = chain.ledger.entries(market=spec.market, kind=spec.kind, account=chain.account, status=READY)
    run_range = _run_range(context)
    if run_range is None:
        return entries
    start, end = run_range
    entries = [e for e in entries if day_of(e.start_ms) <= end and day_of(e.end_ms) >= start]
    covered = {d for e in entries for d in days_between(day_of(e.start_ms), day_of(e.end_ms))}
    missing = [d for d in days_between(start, end) if d not in covered]
    if missing:
        raise dg.Failure(
            f"{spec.table}: {len(missing)} day(s) of {start}..{end} have no completed export "
            f"(first: {missing[0]}, last: {missing[-1]}). Materialize {spec.requests} for them first; the link "
            "sensor starts the retrieval when Binance has generated the file.",
            allow_retries=False,
        )
    return entries


def _expired(chain: ExportChain, spec: ExportAssets, entries: list[LedgerEntry]) -> dg.Failure:
    """A link expired before retrieval: the failure says so, in its text and its metadata, with what a new id
    would cost (never requested automatically)."""
    return dg.Failure(
        description="LinkExpired: " + "; ".join(e.error or e.describe() for e in entries),
        allow_retries=False,
        metadata={
            "link_expired": True,
            "expired": [chain.entry_metadata(str(e.download_id)) for e in entries],
            "new_id_cost": _new_id_cost(chain, spec.endpoint),
        },
    )


def _new_id_cost(chain: ExportChain, endpoint: ExportEndpoint) -> str:
    q = chain.quota(endpoint)
    return (
        f"1 of the {q.remaining} of {q.limit} download ids left in {q.month} for {q.market}/{q.kind} (shared with the "
        f"website) and {EXPORT_CREATE_WEIGHT.get(endpoint.api, max(EXPORT_CREATE_WEIGHT.values()))} request weight; "
        "never requested automatically"
    )


def _failure(exc: Exception) -> dg.Failure:
    """Export errors already say what failed and what to do; never let Dagster retry a quota-spending step."""
    return dg.Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False)


def build_chain_assets(spec: ExportAssets, partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    # The request and the table are per day (what is covered); a link and a file are per download id, so those two
    # assets are unpartitioned: one materialization per retrieval, not one per day of the export's year.
    daily = {"partitions_def": partitions, "backfill_policy": dg.BackfillPolicy.single_run()}

    @dg.asset(
        name=spec.requests,
        kinds={"python"},
        pool=POOL,
        group_name=spec.group,
        **daily,
        description=f"{spec.market} {spec.kind}-history export requests: download ids covering these days, "
        "coalesced into as few <=1-year requests as possible. SPENDS MONTHLY QUOTA (about 10 a "
        "month, shared with the website); days already exported are never requested again.",
    )
    def requests(context: dg.AssetExecutionContext, exports: ExportsResource) -> dg.MaterializeResult:
        chain = exports.chain()
        start, end = _range(context)
        if spec.kind != "order":  # REST serves the recent days whole: never spend a scarce id on them
            end = min(end, last_day_beyond_rest(spec.kind, chain.client.futures.server_time()))
        context.log.info(chain.plan(spec.endpoint, start, end).describe())
        try:
            # Pacing between create calls (31 s) is a short sleep inside this run, never in a sensor tick.
            created = chain.request(spec.endpoint, start, end, sleep=time.sleep)
        except OrderlakeError as exc:
            raise _failure(exc) from exc
        plan = created.plan
        if plan.blocked:
            raise dg.Failure(
                f"{len(plan.blocked)} export request(s) for these days have an UNKNOWN outcome and block their "
                "range until you decide (quota may be spent): "
                + "; ".join(e.describe() for e in plan.blocked)
                + ". Check the Binance website's download history, then `orderlake exports resolve "
                "<entry> [--download-id ID]`.",
                allow_retries=False,
            )
        return dg.MaterializeResult(
            metadata={
                "ids_created": len(created),
                "ids_reused": len(plan.covering),
                "created": [chain.entry_metadata(str(e.download_id)) for e in created],
                "reused": [e.describe() for e in plan.covering],
                **_quota_metadata(chain, spec.endpoint),
            }
        )

    @dg.asset(
        name=spec.links,
        deps=[requests],
        kinds={"python"},
        group_name=spec.group,
        description="Download links Binance reported ready (polled by the export link sensor). Shows each "
        "link's host and expiry, never the pre-signed URL.",
    )
    def links(context: dg.AssetExecutionContext, exports: ExportsResource) -> dg.MaterializeResult:
        chain = exports.chain()
        entries = _entries_for_run(context, chain, spec)
        expired = [e for e in entries if e.status is LedgerState.EXPIRED]
        if expired:
            raise _expired(chain, spec, expired)
        waiting = [e for e in entries if e.status not in READY]
        if waiting:
            raise dg.Failure(
                "export(s) not ready yet: "
                + "; ".join(e.describe() for e in waiting)
                + ". The export link sensor launches this run when Binance has generated the file.",
                allow_retries=False,
            )
        return dg.MaterializeResult(metadata={"links": [chain.entry_metadata(str(e.download_id)) for e in entries]})

    @dg.asset(
        name=spec.files,
        deps=[links],
        kinds={"zip"},
        group_name=spec.group,
        description=f"Raw export files, streamed once to $ORDERLAKE_DATA_DIR/raw/{spec.market}/<downloadId>.* "
        "and kept immutable (verified by SHA-256), so a parser fix never costs quota.",
    )
    def files(context: dg.AssetExecutionContext, exports: ExportsResource) -> dg.MaterializeResult:
        chain = exports.chain()
        stored = []
        for entry in _entries_for_run(context, chain, spec):
            try:
                raw = chain.retrieve(str(entry.download_id))
            except LinkExpired as exc:
                raise _expired(chain, spec, [chain.ledger.get(entry.id)]) from exc
            except OrderlakeError as exc:
                raise _failure(exc) from exc
            stored.append(
                {
                    "download_id": entry.download_id,
                    "range": entry.range_text,
                    "size": raw.size,
                    "sha256": raw.sha256,
                    "path": str(raw.path),
                    "reused": raw.reused,
                }
            )
        return dg.MaterializeResult(metadata={"files": stored, "bytes": sum(s["size"] for s in stored)})

    rules, day_checks, file_checks = _table_checks(spec)

    @dg.asset(
        name=spec.table_asset,
        deps=[files],
        kinds={"parquet"},
        group_name=spec.group,
        **daily,
        output_required=False,  # one materialization per day is reported by the body
        check_specs=checks.specs(spec.table_asset, (*day_checks, *file_checks)),
        description=f"{spec.market} {spec.kind}s from the export files ({spec.table}), one partition per UTC day. "
        "Exact decimals, int64 ids, UTC times; the export's UTC offset is stored with the rows.",
    )
    def table(context: dg.AssetExecutionContext, exports: ExportsResource):
        chain = exports.chain()
        start, end = _range(context)
        entries = _entries_for_run(context, chain, spec)
        for entry in entries:
            try:
                result = chain.ingest(str(entry.download_id))
            except OrderlakeError as exc:  # the chain's, the parser's and Binance's errors alike
                raise _failure(exc) from exc
            for warning in result.warnings:
                context.log.warning(warning)
        ingested = [chain.ledger.get(e.id) for e in entries]
        yield from _partition_materializations(chain, spec, ingested, start, end)
        tally = checks.RuleTally(spec.table_asset, rules, day_checks)
        for day in days_between(start, end):
            tally.add(day, lake.read_partition(chain.data_dir, spec.table, chain.account, day))
        yield from tally.results()
        yield from _export_check_results(chain, spec, ingested, file_checks)

    return [requests, links, files, table]


def _table_checks(spec: ExportAssets) -> tuple:
    """(per-day rules, their checks, the file checks) of a chain's table asset."""
    if spec.kind == "order":
        return quality.futures_order_rules, checks.ORDER_CHECKS, EXPORT_CHECKS
    rules, day_checks = fill_table_checks(spec.kind)
    return rules, day_checks, EXPORT_CHECKS[:2]  # order_id uniqueness is an order rule


def _partition_materializations(
    chain: ExportChain, spec: ExportAssets, entries: list[LedgerEntry], start: date, end: date
) -> Iterator[dg.AssetMaterialization]:
    """One event per day of the run with that day's rows (from the ledger) and the download id that wrote it;
    the export's own description (quota, generation time, file) rides on the last day only."""
    by_day = {day: (e, rows) for e in entries for day, rows in (e.partitions or {}).items()}
    days = days_between(start, end)
    for day in days:
        entry, rows = by_day[day.isoformat()]
        meta: dict = {"row_count": rows, "download_id": entry.download_id}
        if day == days[-1]:
            meta |= {
                "run_rows": sum(e.rows or 0 for e in entries),
                "exports": [chain.entry_metadata(str(e.download_id)) for e in entries],
            }
            if spec.kind == "order":
                awaiting = export_checks.open_orders_awaiting_final(chain.data_dir, spec.table, chain.account)
                meta["open_orders_awaiting_final"] = awaiting.num_rows
        yield dg.AssetMaterialization(asset_key=spec.table_asset, partition=day.isoformat(), metadata=meta)


def _export_check_results(
    chain: ExportChain, spec: ExportAssets, entries: list[LedgerEntry], file_checks: tuple[checks.Check, ...]
) -> list[dg.AssetCheckResult]:
    table = spec.table
    rules = {
        "rows_parsed_equal_data_lines": [export_checks.data_lines_parsed(e) for e in entries],
        "partitions_as_recorded": [export_checks.partitions_as_recorded(chain.data_dir, table, e) for e in entries],
    }
    if spec.kind == "order":
        keys = export_checks.account_order_keys(chain.data_dir, table, chain.account)
        rules["unique_order_id_account"] = [export_checks.unique_order_id(keys)]
    return [
        dg.AssetCheckResult(
            asset_key=spec.table_asset,
            check_name=c.name,
            severity=c.severity,
            passed=all(r.passed for r in rules[c.name]),
            metadata={
                "violations": sum(r.violations for r in rules[c.name]),
                "examples": "; ".join(x for r in rules[c.name] for x in r.examples[:3]) or "none",
            },
        )
        for c in file_checks
    ]

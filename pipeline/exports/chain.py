"""The export chain: plan -> request (create call) -> poll -> retrieve -> ingest, generic over (market, kind).

Tick-friendly: no method sleeps (except :meth:`ExportChain.wait_until_complete` and ``request(sleep=...)``, which
the CLI uses); pacing is expressed as "not yet, try at T". All state lives in the :class:`ExportLedger`, so a new
``ExportChain`` on the same data dir (another process, a restart) continues where the last one stopped.

What the Dagster layer calls: ``request(endpoint, start, end)`` / ``refresh(endpoint)`` (the only quota-spending
steps), ``poll_due()`` on every sensor tick (``PollOutcome.run_key`` = the download id), ``pending_retrieval()``,
``retrieve(download_id)`` and ``ingest(download_id)``, and for metadata ``quota(endpoint)``,
``entry_metadata(download_id)`` and ``status_summary()``; :func:`pipeline.exports.checks.export_rules` for checks.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pipeline.binance import errors
from pipeline.binance.exports import EXPORT_ENDPOINTS, ExportEndpoint
from pipeline.binance.facts import EXPORT_MONTHLY_QUOTA
from pipeline.errors import CredentialError
from pipeline.exports import links, pacing
from pipeline.exports.checks import open_orders_awaiting_final
from pipeline.exports.download import (
    DEFAULT_MAX_DOWNLOAD_BYTES,
    DEFAULT_MAX_DOWNLOAD_SECONDS,
    normalise_url,
    url_where,
)
from pipeline.exports.errors import (
    ExportNotConfigured,
    ExportRejected,
    ExportRequestUnknown,
    QuotaWouldBeExceeded,
)
from pipeline.exports.ledger import ExportLedger, LedgerEntry, QuotaStatus, describe_unknown_help
from pipeline.exports.outcomes import ExportPlan, PollOutcome, RequestResult, StatusSummary
from pipeline.exports.planning import DEFAULT_REFRESH_DAYS, coalesce, covered_days, refresh_range
from pipeline.exports.retrieval import TABLES, RetrievalSteps
from pipeline.exports.states import BLOCKING, NEEDS_A_PERSON, LedgerState
from pipeline.times import day_end_ms, day_of, day_start_ms, fmt_ms, month_of

log = logging.getLogger(__name__)

# Only an HTTP 4xx answer proves Binance received AND refused a create call (no id made). 408 is a timeout.
_DEFINITIVE_HTTP = range(400, 500)


def _as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


class ExportChain(RetrievalSteps):
    """Facade over ledger + client for one account. See module docstring; methods never sleep unless asked.

    ``utc_offset_minutes`` (ORDERLAKE_EXPORT_UTC_OFFSET_MINUTES) is the account's display timezone, used only for
    export files whose name and header do not say it and when no offset could be inferred from REST.
    """

    def __init__(
        self,
        client: Any,
        ledger: ExportLedger,
        *,
        data_dir: str | os.PathLike[str],
        account: str,
        monthly_limit: int | None = None,
        monthly_limits: Mapping[str, int | None] | None = None,
        allow_http_loopback: bool = False,
        now: Callable[[], float] = time.time,
        time_scale: float = 1.0,
        include_today: bool = False,
        utc_offset_minutes: int | None = None,
        refresh_days: int = DEFAULT_REFRESH_DAYS,
        endpoints: Mapping[tuple[str, str], ExportEndpoint] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        max_download_seconds: float = DEFAULT_MAX_DOWNLOAD_SECONDS,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.data_dir = Path(data_dir)
        self.account = account
        self.monthly_limit = monthly_limit  # order exports; None: Binance's quota
        self.monthly_limits = dict(monthly_limits or {})  # kind -> limit (None: Binance's quota of the kind)
        self.allow_http_loopback = allow_http_loopback
        self.utc_offset_minutes = utc_offset_minutes
        self.now = now
        self.time_scale = time_scale
        self.include_today = include_today
        self.refresh_days = refresh_days
        self._endpoints: dict[tuple[str, str], ExportEndpoint] = {**EXPORT_ENDPOINTS, **(endpoints or {})}
        self.sleep = sleep  # waits between download attempts (retrieval)
        self.max_download_bytes = max_download_bytes
        self.max_download_seconds = max_download_seconds

    # -- small helpers ----------------------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self.now() * 1000)

    def _scaled_ms(self, seconds: float) -> int:
        return int(seconds * self.time_scale * 1000)

    def endpoint_for(self, market: str, kind: str) -> ExportEndpoint:
        try:
            return self._endpoints[(market, kind)]
        except KeyError:
            raise ExportNotConfigured(f"no export endpoint configured for {market}/{kind}") from None

    def limit_for(self, endpoint: ExportEndpoint) -> int:
        """Monthly download-id limit of an endpoint: the configured limit, else Binance's quota for its kind."""
        return self._limit_for_kind(endpoint.kind)

    def _limit_for_kind(self, kind: str) -> int:
        configured = self.monthly_limits.get(kind, self.monthly_limit if kind == "order" else None)
        if configured is not None:
            return configured
        return EXPORT_MONTHLY_QUOTA.get(kind, min(EXPORT_MONTHLY_QUOTA.values()))

    def quota(self, endpoint: ExportEndpoint, month: str | None = None) -> QuotaStatus:
        """Ids used / remaining in ``month`` (default: this UTC month) for this endpoint and account."""
        return self.ledger.quota(
            endpoint.market, endpoint.kind, self.account, month or month_of(self._now_ms()), self.limit_for(endpoint)
        )

    # -- 1+2. planning and requesting -------------------------------------------------------------------------
    def plan(self, endpoint: ExportEndpoint, start: date, end: date) -> ExportPlan:
        """Coalesced <=1-year requests for the days of [start, end] no ledger entry covers. No API calls."""
        requested_end = end
        last_day = day_of(self._now_ms()) - timedelta(days=0 if self.include_today else 1)
        end = min(end, last_day)
        covering: list[LedgerEntry] = []
        if start <= end:
            lo, hi = day_start_ms(start), day_end_ms(end)
            covering = [
                e
                for e in self.ledger.entries(
                    market=endpoint.market, kind=endpoint.kind, account=self.account, status=BLOCKING
                )
                if e.start_ms <= hi and e.end_ms >= lo
            ]
        covered = covered_days([(e.start_ms, e.end_ms) for e in covering], start, end) if start <= end else set()
        blocked = tuple(e for e in covering if e.status in NEEDS_A_PERSON)
        return ExportPlan(
            endpoint.market,
            endpoint.kind,
            self.account,
            start,
            end,
            requested_end,
            tuple(coalesce(start, end, covered)),
            tuple(covering),
            blocked,
            self.quota(endpoint),
        )

    def request(
        self,
        endpoint: ExportEndpoint,
        start: date,
        end: date,
        *,
        partial: bool = False,
        sleep: Callable[[float], None] | None = None,
    ) -> RequestResult:
        """Spend download ids on the planned ranges; ledger row BEFORE each call, download id right AFTER.

        Refuses (QuotaWouldBeExceeded) before any call when the plan needs more ids than are left, unless
        ``partial`` (then it requests what the quota allows, oldest first, and refuses at the limit). Pacing:
        without ``sleep`` it stops at the first "not yet" and reports ``deferred``/``not_before``; with ``sleep``
        (CLI) it waits. A timeout/5xx raises :class:`ExportRequestUnknown` after marking the entry ``unknown``.
        """
        self.ledger.expire_stale_attempts(self._now_ms(), int(pacing.STALE_ATTEMPT_S * 1000))
        plan = self.plan(endpoint, start, end)
        for e in plan.blocked:
            log.warning("export range blocked until you decide: %s", e.describe())
        q = plan.quota
        if plan.requests and not partial and (q.blocked_by_binance or len(plan.requests) > q.remaining):
            raise QuotaWouldBeExceeded(
                market=q.market,
                kind=q.kind,
                account=self.account,
                month=q.month,
                used=q.used,
                limit=q.limit,
                needed=len(plan.requests),
                resets_at_ms=q.resets_at_ms,
                blocked_by_binance=q.blocked_by_binance,
                detail=f"Planned ranges: {', '.join(map(str, plan.requests))}.",
            )
        created: list[LedgerEntry] = []
        todo = list(plan.requests)
        credentials = getattr(self.client, "credentials", None)
        if todo and credentials is not None:  # no attempt row (nor its failure cooldown) for a call never signed
            credentials.require_signing(endpoint.create_path)
        while todo:
            rng = todo[0]
            res = self.ledger.reserve_attempt(
                market=endpoint.market,
                kind=endpoint.kind,
                api=endpoint.api,
                account=self.account,
                start_ms=rng.start_ms,
                end_ms=rng.end_ms,
                now_ms=self._now_ms(),
                limit=self.limit_for(endpoint),
                spacing_ms=self._scaled_ms(pacing.CREATE_SPACING_S),
                failure_cooldown_ms=self._scaled_ms(pacing.CREATE_FAILURE_COOLDOWN_S),
            )
            if res.not_before_ms is not None:
                if sleep is None:
                    return RequestResult(created, plan=plan, deferred=todo, not_before=res.not_before_ms / 1000)
                sleep(max(res.not_before_ms / 1000 - self.now(), 0.0) + 0.001)
                continue
            todo.pop(0)
            if res.entry is None:  # another process covered it between plan and reservation
                continue
            created.append(self._create(endpoint, res.entry))
        return RequestResult(created, plan=plan)

    def refresh(self, endpoint: ExportEndpoint) -> RequestResult:
        """The scheduled refresh: the previous ``refresh_days`` complete UTC days, plus any gap since the last
        export of this endpoint (a skipped schedule run must not leave a hole)."""
        today = day_of(self._now_ms())
        covering = self.ledger.entries(
            market=endpoint.market, kind=endpoint.kind, account=self.account, status=BLOCKING
        )
        last = max((day_of(e.end_ms) for e in covering), default=None)
        start, end = refresh_range(today, self.refresh_days, last_covered=last)
        return self.request(endpoint, start, end)

    def _create(self, endpoint: ExportEndpoint, entry: LedgerEntry) -> LedgerEntry:
        """The one non-idempotent call. The attempt row is already committed."""
        try:
            answer = self.client.create_export(endpoint, entry.start_ms, entry.end_ms)
        except errors.ExportQuotaExhausted as exc:
            now = self._now_ms()
            self.ledger.update(
                entry.id,
                now,
                "quota_exhausted",
                status=LedgerState.FAILED,
                counts_quota=False,
                error=f"Binance: quota exhausted ({exc})",
            )
            self.ledger.record_quota_block(endpoint.market, endpoint.kind, self.account, now, str(exc))
            q = self.quota(endpoint)
            raise QuotaWouldBeExceeded(
                market=endpoint.market,
                kind=endpoint.kind,
                account=self.account,
                month=q.month,
                used=q.used,
                limit=q.limit,
                needed=1,
                resets_at_ms=q.resets_at_ms,
                blocked_by_binance=True,
                detail="No more export requests are made this month.",
            ) from None
        except errors.BinanceError as exc:
            status = exc.http_status
            definitive = status in _DEFINITIVE_HTTP and status != 408 and not isinstance(exc, errors.OutcomeUnknown)
            if not definitive:  # timeout, dropped connection, 5xx, garbage: Binance may have made the id
                raise self._mark_unknown(entry, f"{type(exc).__name__}: {exc}") from exc
            self.ledger.update(
                entry.id,
                self._now_ms(),
                "rejected",
                status=LedgerState.FAILED,
                counts_quota=False,
                error=f"{type(exc).__name__}: {exc}",
            )
            raise ExportRejected(
                f"Binance rejected the {endpoint.market}/{endpoint.kind} export request for "
                f"{entry.range_text} (HTTP {status}): {exc}. No download id was created. The next request "
                f"waits {pacing.CREATE_FAILURE_COOLDOWN_S * self.time_scale:.0f} s."
            ) from exc
        except BaseException as exc:  # a bug, an interrupt, anything: the request may have gone out
            self._mark_unknown(entry, f"{type(exc).__name__}: {exc}")
            raise
        now = self._now_ms()
        download_id = answer.get("downloadId") if isinstance(answer, dict) else None
        if download_id in (None, ""):
            raise self._mark_unknown(entry, f"create call answered without a downloadId: {str(answer)[:200]!r}")
        avg_ms = _as_int(answer.get("avgCostTimestampOfLast30d"))
        next_poll = now + int(pacing.first_poll_delay_s(avg_ms, self.time_scale) * 1000)
        out = self.ledger.record_created(
            entry.id, download_id=str(download_id), avg_cost_ms=avg_ms, now_ms=now, next_poll_at=next_poll
        )
        log.info("export %s created; first poll at %s", out.describe(), fmt_ms(next_poll))
        return out

    def _mark_unknown(self, entry: LedgerEntry, why: str) -> ExportRequestUnknown:
        """Mark the attempt unknown (never re-requested automatically); returns the error telling what to check."""
        self.ledger.update(
            entry.id,
            self._now_ms(),
            "outcome_unknown",
            detail={"why": why},
            status=LedgerState.UNKNOWN,
            error=f"outcome unknown ({why})",
        )
        message = describe_unknown_help(self.ledger.get(entry.id), self.data_dir)
        log.error(message)
        return ExportRequestUnknown(message, entry_id=entry.id)

    # -- 3. polling -------------------------------------------------------------------------------------------
    def poll_due(self, endpoint: ExportEndpoint | None = None) -> list[PollOutcome]:
        """Poll every open id whose next_poll_at has passed (a few quick calls; safe to run every sensor tick)."""
        now = self._now_ms()
        self.ledger.expire_stale_attempts(now, int(pacing.STALE_ATTEMPT_S * 1000))
        due = self.ledger.claim_due_polls(
            now,
            self._scaled_ms(pacing.POLL_LEASE_S),
            market=endpoint.market if endpoint else None,
            kind=endpoint.kind if endpoint else None,
            account=self.account,
        )
        return [self._poll(e) for e in due]

    def _poll(self, entry: LedgerEntry) -> PollOutcome:
        ep = self.endpoint_for(entry.market, entry.kind)
        did = str(entry.download_id)
        try:
            info = self.client.export_link(ep, did)
        except errors.BinanceError as exc:
            now = self._now_ms()
            failures = entry.poll_failures + 1
            nxt = now + int(pacing.poll_error_delay_s(failures, self.time_scale) * 1000)
            self.ledger.update(
                entry.id,
                now,
                "poll_failed",
                detail={"error": f"{type(exc).__name__}: {exc}"},
                poll_failures=failures,
                last_polled_at=now,
                next_poll_at=nxt,
            )
            if isinstance(exc, CredentialError):  # every id would fail the same way
                raise
            return self._outcome(
                entry,
                "poll_failed",
                f"polling download id {did} failed ({exc}); retry at {fmt_ms(nxt)}",
                next_poll_at=nxt,
            )
        return self._apply_poll(entry, info if isinstance(info, dict) else {})

    def _apply_poll(self, entry: LedgerEntry, info: dict[str, Any]) -> PollOutcome:
        now = self._now_ms()
        did = str(entry.download_id)
        status = str(info.get("status") or "").strip().lower()
        expires = links.expiration_ms(info)
        detail = {"status": status, "expirationTimestamp": expires, "isExpired": info.get("isExpired")}
        if status == "completed":
            # PM answers may carry the link in s3Link with url empty (docs/binance-facts.md §Export download links)
            url = (info.get("url") or "").strip() or (info.get("s3Link") or "").strip()
            if not url:
                nxt = now + int(pacing.poll_error_delay_s(entry.poll_failures + 1, self.time_scale) * 1000)
                self.ledger.update(
                    entry.id,
                    now,
                    "poll",
                    detail={**detail, "note": "completed without url"},
                    last_polled_at=now,
                    last_poll_status=status,
                    next_poll_at=nxt,
                    poll_failures=entry.poll_failures + 1,
                )
                return self._outcome(
                    entry,
                    "poll_failed",
                    f"download id {did} is completed but Binance gave no link yet; polling again at {fmt_ms(nxt)}",
                    next_poll_at=nxt,
                )
            url = normalise_url(url)
            self.ledger.update(
                entry.id,
                now,
                "poll",
                detail={**detail, "where": url_where(url)},
                status=LedgerState.COMPLETED,
                url=url,
                url_where=url_where(url),
                url_expires_at=expires,
                completed_at=now,
                last_polled_at=now,
                last_poll_status=status,
                next_poll_at=None,
                poll_failures=0,
            )
            return self._outcome(
                entry,
                "completed",
                f"download id {did} is ready (link valid until {fmt_ms(expires)})",
                url_expires_at=expires,
            )
        if status == "processing":
            polls = entry.polls + 1
            nxt = now + int(pacing.next_poll_delay_s(entry.avg_cost_ms, polls, self.time_scale) * 1000)
            self.ledger.update(
                entry.id,
                now,
                "poll",
                detail=detail,
                polls=polls,
                poll_failures=0,
                last_polled_at=now,
                last_poll_status=status,
                next_poll_at=nxt,
            )
            return self._outcome(
                entry, "processing", f"download id {did} still processing; next poll {fmt_ms(nxt)}", next_poll_at=nxt
            )
        msg = (
            f"download id {did} ({entry.market}/{entry.kind} {entry.range_text}): Binance answered status "
            f"{info.get('status')!r}, which is not one of the documented values (processing, completed). The "
            "entry is now in the 'error' state and is no longer polled; its range stays blocked so no id is "
            "spent on it automatically. Check the website's download history; to poll again or release it: "
            f"orderlake exports resolve {entry.id} [--download-id {did}]"
        )
        self.ledger.update(
            entry.id,
            now,
            "poll",
            detail=detail,
            status=LedgerState.ERROR,
            error=msg,
            last_polled_at=now,
            last_poll_status=status,
            next_poll_at=None,
        )
        log.error(msg)
        return self._outcome(entry, "error", msg)

    @staticmethod
    def _outcome(
        entry: LedgerEntry,
        status: str,
        message: str,
        *,
        next_poll_at: int | None = None,
        url_expires_at: int | None = None,
    ) -> PollOutcome:
        return PollOutcome(
            entry.id,
            str(entry.download_id),
            entry.market,
            entry.kind,
            entry.account,
            status,
            message,
            next_poll_at / 1000 if next_poll_at is not None else None,
            url_expires_at,
        )

    def wait_until_complete(
        self,
        endpoint: ExportEndpoint | None = None,
        timeout: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> list[PollOutcome]:
        """CLI helper: poll_due in a loop, sleeping until the next due poll, until no id is open.

        Returns every outcome seen (the ``completed`` ones are ready for retrieve). ``timeout`` is in seconds of
        the chain's clock; raises TimeoutError naming the ids still open.
        """
        deadline = None if timeout is None else self.now() + timeout
        seen: list[PollOutcome] = []
        scope = {
            "market": endpoint.market if endpoint else None,
            "kind": endpoint.kind if endpoint else None,
            "account": self.account,
        }
        while True:
            seen += self.poll_due(endpoint)
            nxt = self.ledger.next_poll_time(**scope)
            if nxt is None:
                return seen
            now = self.now()
            if deadline is not None and now >= deadline:
                still = self.ledger.entries(status=LedgerState.PROCESSING, **scope)
                raise TimeoutError(
                    f"export(s) still processing after {timeout} s: "
                    + "; ".join(e.describe() for e in still)
                    + ". They keep being polled by the sensor / the next run."
                )
            wait = max(nxt / 1000 - now, 0.0)
            if deadline is not None:
                wait = min(wait, max(deadline - now, 0.0))
            sleep(wait + 0.001)

    def pending_retrieval(self) -> list[LedgerEntry]:
        """Completed ids whose file is not stored yet (e.g. the retrieval run failed): retry them by run_key."""
        return self.ledger.entries(account=self.account, status=LedgerState.COMPLETED)

    def entry_metadata(self, download_id: str) -> dict[str, Any]:
        """Plain values describing one export for Dagster metadata: quota this month, expected generation time,
        link expiry, file, rows per partition."""
        e = self.ledger.by_download_id(str(download_id))
        q = self.quota(self.endpoint_for(e.market, e.kind))
        ready = e.created_at + e.avg_cost_ms if e.created_at is not None and e.avg_cost_ms else None
        return {
            "download_id": e.download_id,
            "market": e.market,
            "kind": e.kind,
            "account": e.account,
            "range": e.range_text,
            "status": e.status,
            "ledger_entry": e.id,
            "quota_month": q.month,
            "quota_used": q.used,
            "quota_remaining": q.remaining,
            "quota_limit": q.limit,
            "avg_cost_ms": e.avg_cost_ms,
            "expected_ready_at": fmt_ms(ready),
            "polls": e.polls,
            "url_expires_at": fmt_ms(e.url_expires_at),
            "file_name": e.file_name,
            "raw_path": e.raw_path,
            "size": e.size,
            "sha256": e.sha256,
            "rows": e.rows,
            "data_lines": e.data_lines,
            "parsed_rows": e.parsed_rows,
            "utc_offset_minutes": e.utc_offset_minutes,
            "rows_per_partition": e.partitions or {},
            "utc_offset_source": e.offset_source,
            "error": e.error,
        }

    # -- 6. status --------------------------------------------------------------------------------------------
    def status_summary(self, account: str | None = None) -> StatusSummary:
        """Quota used/remaining this month per endpoint and the ledger entries by status (CLI, sensor, assets)."""
        account = account or self.account
        month = month_of(self._now_ms())
        entries = self.ledger.entries(account=account)
        keys = sorted({*self._endpoints, *((e.market, e.kind) for e in entries)})
        summary = StatusSummary(account, month)
        for market, kind in keys:
            limit = self._limit_for_kind(kind)
            summary.quotas.append(self.ledger.quota(market, kind, account, month, limit))
        for e in entries:
            summary.by_status.setdefault(e.status, []).append(e)
        for table in sorted({TABLES[k] for k in self._endpoints if k in TABLES and k[1] == "order"}):
            awaiting = open_orders_awaiting_final(self.data_dir, table, account).to_pylist()
            if awaiting:
                summary.awaiting_final[table] = [_describe_open(o) for o in awaiting]
        return summary


def _describe_open(o: dict[str, Any]) -> str:
    since = fmt_ms(int(o["update_time"].timestamp() * 1000))
    return f"{o['symbol']} {o['order_id']} {o['status']} since {since} ({o['source']})"

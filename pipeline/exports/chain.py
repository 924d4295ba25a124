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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pipeline.binance import errors
from pipeline.binance.exports import EXPORT_ENDPOINTS, ExportEndpoint
from pipeline.binance.facts import EXPORT_MONTHLY_QUOTA, FUTURES_REST_RETENTION_DAYS, FUTURES_WINDOW_MS
from pipeline.errors import CredentialError, TransientError
from pipeline.exports import ingest, pacing, parsing
from pipeline.exports.download import LinkExpiredByServer, download, normalise_url, sha256_file, url_where
from pipeline.exports.errors import (
    ExportError,
    ExportNotConfigured,
    ExportRejected,
    ExportRequestUnknown,
    ExportStateError,
    LinkExpired,
    LinkRefreshFailed,
    QuotaWouldBeExceeded,
    RawFileMismatch,
)
from pipeline.exports.ledger import ExportLedger, LedgerEntry, QuotaStatus, describe_unknown_help
from pipeline.exports.planning import DEFAULT_REFRESH_DAYS, PlannedRange, coalesce, covered_days, refresh_range
from pipeline.exports.states import BLOCKING, NEEDS_A_PERSON, READY, LedgerState
from pipeline.times import DAY_MS, day_end_ms, day_of, day_start_ms, days_between, fmt_ms, month_of

log = logging.getLogger(__name__)

# Lake table per (market, kind). Trade / income exports get their own tables when they are added.
TABLES: dict[tuple[str, str], str] = {("usdm", "order"): "futures_orders", ("pm_um", "order"): "pm_um_orders"}
RAW_EXTS = ("zip", "gz", "csv")
EXPIRY_MARGIN_MS = 5_000  # a link this close to its expirationTimestamp is treated as expired
# Only an HTTP 4xx answer proves Binance received AND refused a create call (no id made). 408 is a timeout.
_DEFINITIVE_HTTP = range(400, 500)
# Offset inference compares the export with /fapi/v1/allOrders (/papi/v1/um/allOrders): stay a minute inside its
# window and a day inside its retention.
REST_WINDOW_MS = FUTURES_WINDOW_MS - 60_000
REST_RETENTION_MS = (FUTURES_REST_RETENTION_DAYS - 1) * DAY_MS


def _as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def table_for(market: str, kind: str) -> str:
    try:
        return TABLES[(market, kind)]
    except KeyError:
        raise ExportNotConfigured(
            f"no lake table configured for {market}/{kind} exports (add it to pipeline.exports.chain.TABLES)"
        ) from None


@dataclass(frozen=True)
class ExportPlan:
    """What :meth:`ExportChain.request` would do for a range; computed without any API call."""

    market: str
    kind: str
    account: str
    start: date
    end: date  # after clipping to the last complete UTC day
    requested_end: date
    requests: tuple[PlannedRange, ...]  # create calls still needed (oldest first)
    covering: tuple[LedgerEntry, ...]  # ledger entries that already cover (part of) the range
    blocked: tuple[LedgerEntry, ...]  # ... of which need the user (unknown / attempted / error)
    quota: QuotaStatus

    @property
    def ids_needed(self) -> int:
        return len(self.requests)

    def describe(self) -> str:
        lines = [
            f"{self.market}/{self.kind} {self.account} {self.start}..{self.end}: "
            f"{self.ids_needed} download id(s) needed, {self.quota.remaining} of {self.quota.limit} left "
            f"in {self.quota.month}"
        ]
        if self.end != self.requested_end:
            lines.append(
                f"  end clipped from {self.requested_end} to {self.end} (only complete UTC days are "
                "exported; the recent days come from the REST endpoints)"
            )
        lines += [f"  request {r} ({r.days} days)" for r in self.requests]
        lines += [f"  reuse {e.describe()}" for e in self.covering if e not in self.blocked]
        lines += [f"  BLOCKED by {e.describe()} - needs your decision (resolve_unknown)" for e in self.blocked]
        return "\n".join(lines)


class RequestResult(list):
    """The entries created by :meth:`ExportChain.request` (a list), plus what was not done and why."""

    def __init__(
        self,
        created: Iterable[LedgerEntry],
        *,
        plan: ExportPlan,
        deferred: Iterable[PlannedRange] = (),
        not_before: float | None = None,
    ) -> None:
        super().__init__(created)
        self.plan = plan
        self.deferred: list[PlannedRange] = list(deferred)  # pacing said "not yet" for these ranges
        self.not_before = not_before  # epoch seconds of the next allowed create call

    @property
    def done(self) -> bool:
        return not self.deferred


@dataclass(frozen=True)
class PollOutcome:
    """Result of one link poll. ``status`` is completed | processing | error | poll_failed."""

    entry_id: int
    download_id: str
    market: str
    kind: str
    account: str
    status: str
    message: str
    next_poll_at: float | None = None  # epoch seconds
    url_expires_at: int | None = None  # epoch ms

    @property
    def run_key(self) -> str:
        """Idempotency key for the retrieval run the sensor launches."""
        return self.download_id


@dataclass(frozen=True)
class RawFile:
    path: Path
    size: int
    sha256: str
    reused: bool = False  # True: the immutable raw copy was already there, no HTTP request made


@dataclass
class StatusSummary:
    account: str
    month: str
    quotas: list[QuotaStatus] = field(default_factory=list)
    by_status: dict[LedgerState, list[LedgerEntry]] = field(default_factory=dict)

    def entries(self, *statuses: LedgerState) -> list[LedgerEntry]:
        return [e for s in statuses for e in self.by_status.get(s, [])]

    @property
    def open(self) -> list[LedgerEntry]:
        return self.entries(LedgerState.PROCESSING)

    @property
    def completed(self) -> list[LedgerEntry]:
        return self.entries(*READY)

    @property
    def expired(self) -> list[LedgerEntry]:
        return self.entries(LedgerState.EXPIRED)

    @property
    def unknown(self) -> list[LedgerEntry]:
        return self.entries(LedgerState.UNKNOWN, LedgerState.ATTEMPTED)

    @property
    def errors(self) -> list[LedgerEntry]:
        return self.entries(LedgerState.ERROR, LedgerState.FAILED)

    def text(self) -> str:
        out = [
            f"Exports for account {self.account!r} (quota month {self.month} UTC; the Binance website's "
            "download page shares this quota):"
        ]
        for q in self.quotas:
            note = " (Binance said exhausted)" if q.blocked_by_binance else ""
            unk = f", {q.unknown} with unknown outcome" if q.unknown else ""
            out.append(
                f"  {q.market}/{q.kind}: {q.used} used, {q.remaining} of {q.limit} left{unk}{note}; "
                f"resets {fmt_ms(q.resets_at_ms)}"
            )
        for title, rows in (
            ("open (processing)", self.open),
            ("completed/retrieved/ingested", self.completed),
            ("expired (need a new id)", self.expired),
            ("UNKNOWN outcome (check the website, then resolve)", self.unknown),
            ("error/failed", self.errors),
        ):
            out.append(f"  {title}: {len(rows)}")
            out += [f"    {e.describe()}{(' - ' + e.error) if e.error else ''}" for e in rows]
        return "\n".join(out)

    __str__ = text


class ExportChain:
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
        allow_http_loopback: bool = False,
        now: Callable[[], float] = time.time,
        time_scale: float = 1.0,
        include_today: bool = False,
        utc_offset_minutes: int | None = None,
        refresh_days: int = DEFAULT_REFRESH_DAYS,
        endpoints: Mapping[tuple[str, str], ExportEndpoint] | None = None,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.data_dir = Path(data_dir)
        self.account = account
        self.monthly_limit = monthly_limit  # None: Binance's quota of the endpoint's kind
        self.allow_http_loopback = allow_http_loopback
        self.utc_offset_minutes = utc_offset_minutes
        self.now = now
        self.time_scale = time_scale
        self.include_today = include_today
        self.refresh_days = refresh_days
        self._endpoints: dict[tuple[str, str], ExportEndpoint] = {**EXPORT_ENDPOINTS, **(endpoints or {})}

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
        if self.monthly_limit is not None:
            return self.monthly_limit
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
        expires = info.get("expirationTimestamp")
        expires = int(expires) if isinstance(expires, int | float) and expires > 0 else None
        detail = {"status": status, "expirationTimestamp": expires, "isExpired": info.get("isExpired")}
        if status == "completed":
            # PM answers may carry the link in s3Link with url empty (binance-api.md §5.1)
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

    # -- 4. retrieval -----------------------------------------------------------------------------------------
    def raw_path(self, entry: LedgerEntry, ext: str) -> Path:
        return self.data_dir / "raw" / entry.market / f"{entry.download_id}.{ext}"

    def retrieve(self, download_id: str) -> RawFile:
        """Download the file once into raw/<market>/<id>.<ext>; afterwards always reuse that immutable copy."""
        entry = self.ledger.by_download_id(str(download_id))
        reused = self._reuse_raw(entry)
        if reused is not None:
            return reused
        if entry.status is LedgerState.EXPIRED:
            raise LinkExpired(
                entry.error
                or f"download id {download_id}: the link expired before the file was "
                "retrieved; the range needs a new download id."
            )
        if entry.status not in READY:
            raise ExportStateError(
                f"export {entry.describe()}: no file to retrieve yet (status {entry.status}); "
                "wait until polling reports it completed."
            )
        url, expires = entry.url, entry.url_expires_at
        refreshed = False
        if not url or (expires is not None and self._now_ms() >= expires - EXPIRY_MARGIN_MS):
            url, expires = self._refresh_link(entry, old_url=url, server_said_expired=False)
            refreshed = True
        while True:
            try:
                got = download(
                    url,
                    tmp_dir=self.data_dir / "tmp",
                    final_path=lambda ext: self.raw_path(entry, ext),
                    allow_http_loopback=self.allow_http_loopback,
                )
                break
            except LinkExpiredByServer as exc:
                self.ledger.update(entry.id, self._now_ms(), "link_rejected", detail={"why": str(exc)})
                if refreshed:
                    self._expire(entry, f"the refreshed link was rejected too ({exc})")
                url, expires = self._refresh_link(entry, old_url=url, server_said_expired=True)
                refreshed = True
            except ExportError as exc:
                self.ledger.update(entry.id, self._now_ms(), "download_failed", detail={"error": str(exc)})
                raise
        rel = got.path.relative_to(self.data_dir).as_posix()
        status = entry.status if entry.status is LedgerState.INGESTED else LedgerState.RETRIEVED
        self.ledger.update(
            entry.id,
            self._now_ms(),
            "retrieved",
            detail={"size": got.size, "sha256": got.sha256, "path": rel, "name": got.name},
            status=status,
            raw_path=rel,
            size=got.size,
            sha256=got.sha256,
            file_name=got.name,
            retrieved_at=self._now_ms(),
            url=None,
        )
        log.info("export %s stored as %s (%d bytes, sha256 %s)", download_id, rel, got.size, got.sha256)
        return RawFile(got.path, got.size, got.sha256, reused=False)

    def _reuse_raw(self, entry: LedgerEntry) -> RawFile | None:
        """The raw copy is immutable: reuse it (verified against the recorded sha256) instead of downloading."""
        if entry.raw_path:
            path = self.data_dir / entry.raw_path
            if path.exists():
                size, sha = sha256_file(path)
                if entry.sha256 and sha != entry.sha256:
                    raise RawFileMismatch(
                        f"raw export file {path} no longer matches the SHA-256 recorded for download id "
                        f"{entry.download_id} (recorded {entry.sha256}, now {sha}). It is meant to be immutable; "
                        "restore it from a backup. Nothing was downloaded."
                    )
                return RawFile(path, size, sha, reused=True)
        for ext in RAW_EXTS:  # renamed into place but the ledger update was lost (crash): the file is complete
            path = self.raw_path(entry, ext)
            if path.exists():
                size, sha = sha256_file(path)
                rel = path.relative_to(self.data_dir).as_posix()
                status = entry.status if entry.status is LedgerState.INGESTED else LedgerState.RETRIEVED
                self.ledger.update(
                    entry.id,
                    self._now_ms(),
                    "raw_adopted",
                    detail={"path": rel},
                    status=status,
                    raw_path=rel,
                    size=size,
                    sha256=sha,
                    retrieved_at=self._now_ms(),
                    url=None,
                )
                return RawFile(path, size, sha, reused=True)
        return None

    def _refresh_link(
        self, entry: LedgerEntry, *, old_url: str | None, server_said_expired: bool
    ) -> tuple[str, int | None]:
        """Re-poll …/asyn/id ONCE for a fresh link; mark the entry expired when there is none."""
        ep = self.endpoint_for(entry.market, entry.kind)
        try:
            info = self.client.export_link(ep, str(entry.download_id))
        except TransientError as exc:  # a permanent cause (a rejected key...) says what to fix itself
            raise LinkRefreshFailed(
                f"could not re-poll download id {entry.download_id} for a fresh link: {exc}; "
                "retry later (the entry is unchanged)."
            ) from exc
        now = self._now_ms()
        exp = info.get("expirationTimestamp")
        exp = int(exp) if isinstance(exp, int | float) and exp > 0 else None
        url = (info.get("url") or "").strip() or (info.get("s3Link") or "").strip()
        url = normalise_url(url) if url else ""
        self.ledger.update(
            entry.id,
            now,
            "link_refresh",
            detail={"status": info.get("status"), "where": url_where(url) if url else None, "expirationTimestamp": exp},
        )
        stale = (
            not url
            or str(info.get("status", "")).lower() != "completed"
            or bool(info.get("isExpired"))
            or (exp is not None and now >= exp - EXPIRY_MARGIN_MS)
            or (server_said_expired and url == old_url)
        )
        if stale:
            self._expire(entry, "Binance gave no fresh link when re-polled")
        self.ledger.update(entry.id, now, "link_refreshed", url=url, url_where=url_where(url), url_expires_at=exp)
        return url, exp

    def _expire(self, entry: LedgerEntry, why: str) -> None:
        now = self._now_ms()
        entry = self.ledger.get(entry.id)
        ep = self.endpoint_for(entry.market, entry.kind)
        q = self.quota(ep)
        msg = (
            f"download id {entry.download_id} ({entry.market}/{entry.kind} {entry.range_text}): the download "
            f"link expired (expirationTimestamp {fmt_ms(entry.url_expires_at)}) and {why}. The data of this "
            "range needs a NEW download id: run the export backfill for this range again (the entry no longer "
            f"blocks it). {q.remaining} of {q.limit} ids left in {q.month} for {entry.market}/{entry.kind} "
            "(the Binance website's download page shares this quota)."
        )
        self.ledger.update(entry.id, now, "expired", status=LedgerState.EXPIRED, error=msg, url=None)
        log.error(msg)
        raise LinkExpired(msg)

    # -- 5. ingest --------------------------------------------------------------------------------------------
    def ingest(
        self, download_id: str, *, infer_offset: bool = True, known_offset_minutes: int | None = None
    ) -> ingest.ExportIngestResult:
        """Parse the raw file into daily partitions (never downloads again if the raw copy exists).

        The UTC offset of the file's local times is, best first: ``known_offset_minutes``, inferred from REST
        orders overlapping the export (``infer_offset``), the file's name/header label, the configured
        ``utc_offset_minutes``. A failure is recorded in the ledger (event ``ingest_failed``); the raw file stays
        for a re-ingest after a fix.
        """
        raw = self.retrieve(download_id)
        entry = self.ledger.by_download_id(str(download_id))
        try:
            offset = known_offset_minutes
            if offset is None and infer_offset:
                offset = self._inferred_offset(entry, raw.path)
            result = ingest.write_export_partitions(
                raw.path,
                data_dir=self.data_dir,
                table=table_for(entry.market, entry.kind),
                market=entry.market,
                account=entry.account,
                download_id=str(download_id),
                utc_offset_minutes=offset,
                default_utc_offset_minutes=self.utc_offset_minutes,
                source_name=entry.file_name,
                days=days_between(day_of(entry.start_ms), day_of(entry.end_ms)),
            )
        except Exception as exc:
            self.ledger.update(entry.id, self._now_ms(), "ingest_failed", detail={"error": str(exc)[:2000]})
            raise
        parts = {d.isoformat(): n for d, n in result.partitions.items()}
        self.ledger.update(
            entry.id,
            self._now_ms(),
            "ingested",
            detail={
                "rows": result.rows,
                "partitions": len(parts),
                "warnings": result.warnings[:20],
                "duplicates_dropped": result.duplicates_dropped,
                "outside_days_dropped": result.outside_days_dropped,
            },
            status=LedgerState.INGESTED,
            rows=result.rows,
            data_lines=result.data_lines,
            parsed_rows=result.parsed_rows,
            utc_offset_minutes=result.utc_offset_minutes,
            partitions=parts,
            ingested_at=self._now_ms(),
        )
        return result

    def reingest(self, entry_id: int) -> ingest.ExportIngestResult:
        """Parse a ledger entry's stored raw file into the lake again (after a parser fix): no network call, no new
        download id. The UTC offset is the one the last ingest recorded, so an offset inferred from REST then is
        kept; an entry never ingested falls back to the file's label and the configured offset."""
        entry = self.ledger.get(entry_id)
        if entry.download_id is None or self._reuse_raw(entry) is None:
            raise ExportStateError(
                f"export {entry.describe()}: no downloaded file to re-ingest (status {entry.status}). The retrieval "
                "run (the export link sensor, or `orderlake backfill`) stores it once Binance has generated it."
            )
        return self.ingest(str(entry.download_id), infer_offset=False, known_offset_minutes=entry.utc_offset_minutes)

    def overlap_orders(self, entry: LedgerEntry) -> list[dict[str, Any]]:
        """REST order objects of the export's last days that REST still returns (empty when none overlap)."""
        now = self._now_ms()
        end = min(entry.end_ms, now)
        start = max(entry.start_ms, end - REST_WINDOW_MS, now - REST_RETENTION_MS)
        if start >= end:
            return []
        api = self.endpoint_for(entry.market, entry.kind).api
        rest = self.client.futures if api == "futures" else self.client.papi
        return list(rest.all_orders(start_time=start, end_time=end))

    def _inferred_offset(self, entry: LedgerEntry, path: Path) -> int | None:
        """Offset proven by orders present both in the export and in REST; None when there is no such order."""
        try:
            sample = self.overlap_orders(entry)
        except errors.BinanceError as exc:  # e.g. an older deployment that insists on `symbol`
            log.warning(
                "download id %s: no REST orders to infer the UTC offset from (%s); using the file's "
                "label or the configured offset",
                entry.download_id,
                exc,
            )
            return None
        found = parsing.infer_utc_offset(path, sample)
        detail = {
            "reference_orders": len(sample),
            "matched": found.matched if found else 0,
            "offset_minutes": found.offset_minutes if found else None,
        }
        self.ledger.update(entry.id, self._now_ms(), "utc_offset_inferred", detail=detail)
        return found.offset_minutes if found else None

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
        return summary

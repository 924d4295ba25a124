"""What the export chain's steps return: the plan of a request, the ids it created, a poll's outcome, a stored raw
file and the ledger's status summary."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pipeline.exports.ledger import LedgerEntry, QuotaStatus
from pipeline.exports.planning import PlannedRange
from pipeline.exports.states import READY, LedgerState
from pipeline.times import fmt_ms


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
    # table -> orders whose latest version is still open ("symbol order_id status since ...", oldest first)
    awaiting_final: dict[str, list[str]] = field(default_factory=dict)

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
        for table, orders in self.awaiting_final.items():
            out.append(
                f"  {table}: {len(orders)} order(s) still open in the lake, awaiting a final state (a later export "
                "of their update day or the daily REST refresh brings it)"
            )
            out += [f"    {o}" for o in orders[:10]] + (["    ..."] if len(orders) > 10 else [])
        return "\n".join(out)

    __str__ = text

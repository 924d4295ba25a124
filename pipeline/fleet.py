"""The fleet's unit of work, without Dagster: which days of which account a run covers, and one account's export
range end to end (request, wait for the link, retrieve, ingest).

A run of the fleet's account x day partitions may hold several accounts; each account is done on its own, so one
account's failure leaves the others' days written (:func:`per_account`). Design: docs/design/fleet.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from pipeline.binance.exports import ExportEndpoint
from pipeline.errors import DataError, PermanentError
from pipeline.exports.chain import ExportChain
from pipeline.exports.ledger import LedgerEntry
from pipeline.exports.states import READY
from pipeline.times import day_of


@dataclass(frozen=True)
class AccountDays:
    """A contiguous range of days of one account (a run's partitions, grouped)."""

    account: str
    start: date
    end: date


def account_ranges(keys: Iterable[tuple[str, date]]) -> list[AccountDays]:
    """(account, day) pairs as the fewest contiguous ranges per account, accounts in first-seen order."""
    by_account: dict[str, set[date]] = {}
    for account, day in keys:
        by_account.setdefault(account, set()).add(day)
    out = []
    for account, days in by_account.items():
        ordered = sorted(days)
        start = prev = ordered[0]
        for day in ordered[1:]:
            if day != prev + timedelta(days=1):
                out.append(AccountDays(account, start, prev))
                start = day
            prev = day
        out.append(AccountDays(account, start, prev))
    return out


class AccountsFailed(PermanentError):
    """Some accounts of a run failed; the others' days are written. The message names each failed account."""


def per_account(
    ranges: Iterable[AccountDays], work: Callable[[AccountDays], object]
) -> Iterator[tuple[AccountDays, object]]:
    """Run ``work`` for each range and yield its result; errors are collected and raised together at the end, so
    one account's failure never stops another's."""
    failed: list[str] = []
    for rng in ranges:
        try:
            result = work(rng)
        except Exception as exc:  # whatever broke one account, the next one still runs
            failed.append(f"{rng.account} ({rng.start}..{rng.end}): {type(exc).__name__}: {exc}")
            continue
        yield rng, result
    if failed:
        raise AccountsFailed(f"{len(failed)} account(s) failed: " + " | ".join(failed))


def export_range(
    chain: ExportChain,
    endpoint: ExportEndpoint,
    start: date,
    end: date,
    *,
    sleep: Callable[[float], None],
    timeout_s: float | None = None,
) -> list[LedgerEntry]:
    """Request the download ids the ledger does not already hold for ``start``..``end`` (pacing slept here), wait
    until Binance has generated them, store the raw files and write the lake's days. Returns the entries used."""
    created = chain.request(endpoint, start, end, sleep=sleep)
    if created.plan.blocked:
        raise DataError(
            "export request(s) with an UNKNOWN outcome block these days (quota may be spent): "
            + "; ".join(e.describe() for e in created.plan.blocked)
            + ". Check the Binance website's download history, then `orderlake exports resolve <entry>`."
        )
    chain.wait_until_complete(endpoint, timeout=timeout_s, sleep=sleep)
    entries = [
        e
        for e in chain.ledger.entries(market=endpoint.market, kind=endpoint.kind, account=chain.account, status=READY)
        if day_of(e.start_ms) <= end and day_of(e.end_ms) >= start
    ]
    for entry in entries:
        chain.ingest(str(entry.download_id))  # stores the raw file first, or reuses it
    return [chain.ledger.get(e.id) for e in entries]

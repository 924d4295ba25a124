"""The trades and income section of ``orderlake status``: per account and market, which days the lake covers and
from where (REST or an export), the export quota of each trade and income endpoint this month, and the blind spots:
days older than REST's reach that no export has brought (yet), and days REST still serves that were never fetched.
Design: docs/design/trades.md §Trade and income exports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from pipeline.binance.exports import EXPORT_ENDPOINTS
from pipeline.exports.chain import ExportChain
from pipeline.exports.ledger import ExportLedger
from pipeline.exports.states import IN_FLIGHT, LedgerState
from pipeline.storage import lake
from pipeline.storage.schemas import futures_income, futures_trades
from pipeline.times import day_of, days_between
from pipeline.trades.futures_tail import last_day_beyond_rest


@dataclass(frozen=True)
class Coverage:
    """One futures (market, kind): the table's days, what exports brought or are bringing, REST's first day."""

    market: str
    kind: str  # trade | income
    table: str
    stored: set[date]
    exported: set[date]
    in_flight: set[date]
    first_rest_day: date


def _runs(days: list[date]) -> str:
    if not days:
        return "none"
    runs: list[list[date]] = []
    for d in sorted(days):
        if runs and d == runs[-1][1] + timedelta(days=1):
            runs[-1][1] = d
        else:
            runs.append([d, d])
    text = ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in runs[:6])
    return text + (f" ... ({len(runs) - 6} more runs)" if len(runs) > 6 else "") + f" [{len(days)} days]"


def coverage(data_dir: Path, account: str, ledger: ExportLedger | None, now_ms: int) -> list[Coverage]:
    out = []
    for kind, tables in (("trade", futures_trades.MARKETS), ("income", futures_income.MARKETS)):
        for market, table in tables.items():
            entries = ledger.entries(market=market, kind=kind, account=account) if ledger else []
            done = [e for e in entries if e.status == LedgerState.INGESTED]
            flying = [e for e in entries if e.status in IN_FLIGHT]
            out.append(
                Coverage(
                    market,
                    kind,
                    table,
                    set(lake.list_partitions(data_dir, table, account)),
                    {d for e in done for d in days_between(day_of(e.start_ms), day_of(e.end_ms))},
                    {d for e in flying for d in days_between(day_of(e.start_ms), day_of(e.end_ms))},
                    last_day_beyond_rest(kind, now_ms) + timedelta(days=1),
                )
            )
    return out


def trades_section(
    data_dir: str | Path,
    accounts: list[str],
    *,
    start_date: date | None,
    now: datetime,
    monthly_limits: Mapping[str, int | None] | None = None,
) -> list[str]:
    """The rendered lines of the section (see the module docstring)."""
    data_dir = Path(data_dir)
    now_ms = int(now.timestamp() * 1000)
    has_ledger = (data_dir / "state" / "export_ledger.sqlite").exists()
    ledger = ExportLedger(data_dir) if has_ledger else None
    yesterday = now.date() - timedelta(days=1)
    out = ["", "TRADES AND INCOME (fills and the futures income ledger; REST for recent days, exports before)"]
    for account in accounts:
        spot = lake.list_partitions(data_dir, "spot_trades", account)
        out.append(f"  [{account}] spot_trades: {len(spot)} days" + (f", {spot[0]}..{spot[-1]}" if spot else ""))
        chain = None
        if ledger is not None:
            chain = ExportChain(None, ledger, data_dir=data_dir, account=account, now=now.timestamp)
            chain.monthly_limits = dict(monthly_limits or {})
        for c in coverage(data_dir, account, ledger, now_ms):
            line = f"  [{account}] {c.table}: {len(c.stored)} days"
            if c.stored:
                line += f", {min(c.stored)}..{max(c.stored)}; from exports: {len(c.exported & c.stored)} days"
            if chain is not None:
                q = chain.quota(EXPORT_ENDPOINTS[(c.market, c.kind)])
                line += f"; {c.market}/{c.kind} export ids this month: {q.used} of {q.limit} used"
            out.append(line)
            out.append(f"    REST serves {c.first_rest_day}.. whole; older days only through the {c.kind} export")
            if start_date is None:
                continue
            old = [d for d in days_between(start_date, min(c.first_rest_day - timedelta(days=1), yesterday))]
            blind = [d for d in old if d not in c.stored and d not in c.in_flight]
            flying = [d for d in old if d not in c.stored and d in c.in_flight]
            recent = [d for d in days_between(max(start_date, c.first_rest_day), yesterday) if d not in c.stored]
            out.append(f"    blind spot: older than REST's reach, no {c.kind} export ingested: {_runs(blind)}")
            if flying:
                out.append(f"    {c.kind} export requested, not ingested yet: {_runs(flying)}")
            out.append(f"    not fetched yet, REST still serves them: {_runs(recent)}")
    return out

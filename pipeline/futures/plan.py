"""Which days of USDⓈ-M and PM history come from REST and which need an export (a download id), cheapest first.

REST costs no download id but serves a day whole only while its zero-fill cancels are still kept (3 days), and
any order only for 90 days (docs/binance-facts.md §Retention). So a backfill takes REST for the days that began less
than 3 days ago and exports for the older ones, fewest windows of at most a year; days an export or a complete REST
run already covers cost nothing. Later, exports are needed only for days the daily run missed for longer than REST
keeps them, for the creation days of orders REST stopped showing before their final state (vanished), and for the
optional monthly reconciliation. Design: docs/design/futures-rest.md §Scheduling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from pipeline.exports.ledger import ExportLedger
from pipeline.exports.planning import PlannedRange, coalesce, covered_days
from pipeline.exports.states import BLOCKING
from pipeline.futures import state
from pipeline.futures.orders_tail import complete_from_ms
from pipeline.times import day_of, day_start_ms, days_between

MARKETS = ("usdm", "pm_um")


@dataclass
class MarketPlan:
    market: str
    rest_days: list[date] = field(default_factory=list)
    exports: list[PlannedRange] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # export range -> why

    def describe(self) -> str:
        rest = f"{self.rest_days[0]}..{self.rest_days[-1]} ({len(self.rest_days)} day(s))" if self.rest_days else "none"
        ids = ", ".join(f"{r} ({self.reasons.get(str(r), 'older than REST serves whole')})" for r in self.exports)
        return f"{self.market}: REST {rest}, 0 download ids; exports: {len(self.exports)} download id(s)" + (
            f" for {ids}" if ids else ""
        )


def first_rest_day(now_ms: int) -> date:
    """The first day REST still serves whole (its zero-fill cancels included)."""
    full = complete_from_ms(now_ms)
    first = day_of(full)
    return first if day_start_ms(first) >= full else first + timedelta(days=1)


def exported_days(data_dir: str | Path, account: str, market: str, start: date, end: date) -> set[date]:
    entries = ExportLedger(data_dir).entries(market=market, kind="order", account=account, status=BLOCKING)
    return covered_days(((e.start_ms, e.end_ms) for e in entries), start, end)


def plan_backfill(data_dir: str | Path, account: str, start: date, end: date, now_ms: int) -> list[MarketPlan]:
    """REST for the days of ``start..end`` REST serves whole, exports for the others not covered yet."""
    first = first_rest_day(now_ms)
    out = []
    for market in MARKETS:
        plan = MarketPlan(market, [d for d in days_between(max(start, first), end)])
        covered = exported_days(data_dir, account, market, start, end) | state.complete_days(
            state.load(data_dir, account, market)
        )
        plan.exports = coalesce(start, min(end, first - timedelta(days=1)), covered)
        out.append(plan)
    return out


def plan_daily_exports(
    data_dir: str | Path, account: str, today: date, now_ms: int, *, since: date, monthly: bool = False
) -> list[MarketPlan]:
    """Exports the daily run cannot avoid: days since ``since`` (the lake's first REST-complete day) that neither a
    complete REST run nor an export covers and REST no longer serves whole; creation days of vanished orders; and,
    if ``monthly``, last month on the 1st."""
    first = first_rest_day(now_ms)
    out = []
    for market in MARKETS:
        section = state.load(data_dir, account, market)
        plan = MarketPlan(market)
        complete = state.complete_days(section)
        start = min([since, *complete]) if complete else since
        last = first - timedelta(days=1)
        exported = exported_days(data_dir, account, market, start, max(last, start))
        missed = {d for d in days_between(start, last) if d not in complete and d not in exported}
        vanished = {day_of(int(v["time"])) for v in section.get("vanished", {}).values()}
        vanished -= exported_days(data_dir, account, market, min(vanished, default=start), today)
        wanted = missed | vanished
        if monthly and today.day == 1:
            prev_end = today - timedelta(days=1)
            wanted |= set(days_between(prev_end.replace(day=1), prev_end)) - exported
        if wanted:
            plan.exports = coalesce(min(wanted), max(wanted), set(days_between(min(wanted), max(wanted))) - wanted)
            for r in plan.exports:
                why = [
                    w
                    for w, days in (("missed by REST", missed), ("vanished orders", vanished))
                    if days & set(days_between(r.start, r.end))
                ]
                plan.reasons[str(r)] = ", ".join(why) or "monthly reconciliation"
        out.append(plan)
    return out

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

from pipeline.exports.ledger import ExportLedger, ledger_path
from pipeline.exports.planning import PlannedRange, coalesce, covered_days
from pipeline.exports.states import BLOCKING
from pipeline.futures import state
from pipeline.futures.orders_tail import complete_from_ms, reach_ms
from pipeline.settings import Settings
from pipeline.times import day_of, day_start_ms, days_between

MARKETS = ("usdm", "pm_um")


@dataclass
class MarketPlan:
    market: str
    rest_days: list[date] = field(default_factory=list)  # days REST serves whole
    rest_from: date | None = None  # the first day REST still reaches (a backfill asks REST from there)
    exports: list[PlannedRange] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # export range -> why

    def describe(self) -> str:
        rest = "none"
        if self.rest_days:
            whole = f"{self.rest_days[0]}..{self.rest_days[-1]} ({len(self.rest_days)} day(s))"
            rest = f"{self.rest_from}..{self.rest_days[-1]}, whole {whole}" if self.rest_from else whole
        ids = ", ".join(f"{r} ({self.reasons.get(str(r), 'older than REST serves whole')})" for r in self.exports)
        return f"{self.market}: REST {rest}, 0 download ids; exports: {len(self.exports)} download id(s)" + (
            f" for {ids}" if ids else ""
        )


def first_rest_day(now_ms: int) -> date:
    """The first day REST still serves whole (its zero-fill cancels included)."""
    full = complete_from_ms(now_ms)
    first = day_of(full)
    return first if day_start_ms(first) >= full else first + timedelta(days=1)


def _entries(data_dir: str | Path, account: str, market: str) -> list:
    if not ledger_path(data_dir).exists():
        return []
    return ExportLedger(data_dir).entries(market=market, kind="order", account=account, status=BLOCKING)


def exported_days(
    data_dir: str | Path, account: str, market: str, start: date, end: date, *, requested_after: int = 0
) -> set[date]:
    """Days of ``start..end`` an export (requested after ``requested_after``, local ms) covers or will cover."""
    entries = [e for e in _entries(data_dir, account, market) if e.requested_at > requested_after]
    return covered_days(((e.start_ms, e.end_ms) for e in entries), start, end)


def plan_backfill(data_dir: str | Path, account: str, start: date, end: date, now_ms: int) -> list[MarketPlan]:
    """Per market: exports for the days of ``start..end`` REST no longer serves whole and nothing covers yet, through
    ``end`` when that costs no extra id (an export may select rows by update time: an order created before its
    range and updated after it is in no export); REST over every day it still reaches (current states, the
    refresh of what the exports left open), whole for the last ones."""
    first = first_rest_day(now_ms)
    reach_first = day_of(reach_ms(now_ms)) + timedelta(days=1)
    out = []
    for market in MARKETS:
        plan = MarketPlan(market, days_between(max(start, first), end), max(start, reach_first))
        complete = state.complete_days(state.load(data_dir, account, market))
        covered = exported_days(data_dir, account, market, start, end) | complete
        needed = coalesce(start, min(end, first - timedelta(days=1)), covered)
        through_end = coalesce(start, end, covered)
        plan.exports = through_end if len(through_end) <= len(needed) else needed
        out.append(plan)
    return out


def plan_daily_exports(
    data_dir: str | Path, account: str, today: date, now_ms: int, *, since: date, monthly: bool = False
) -> list[MarketPlan]:
    """Exports the daily runs cannot replace, per market: days after the first one REST served whole (earlier days
    are a backfill's) that neither REST nor an export covers and REST no longer serves whole; for each vanished
    order, its creation day to the day it vanished (an export selects by creation or by update time, Binance does
    not say which), unless an export requested after it vanished covers them; and, if ``monthly``, last month on
    the 1st."""
    first = first_rest_day(now_ms)
    out = []
    for market in MARKETS:
        section = state.load(data_dir, account, market)
        plan = MarketPlan(market)
        complete = state.complete_days(section)
        missed: set[date] = set()
        if complete:
            start, last = max(min(complete), since), first - timedelta(days=1)
            exported = exported_days(data_dir, account, market, start, max(start, last))
            missed = {d for d in days_between(start, last) if d not in complete and d not in exported}
        vanished: set[date] = set()
        for v in section.get("vanished", {}).values():
            days = set(days_between(day_of(int(v["time"])), day_of(int(v.get("seen_ms", now_ms)))))
            after = exported_days(data_dir, account, market, min(days), max(days), requested_after=v.get("seen_at", 0))
            vanished |= days - after
        wanted = missed | vanished
        monthly_days: set[date] = set()
        if monthly and today.day == 1:
            last_month = days_between((today - timedelta(days=1)).replace(day=1), today - timedelta(days=1))
            monthly_days = set(last_month) - exported_days(data_dir, account, market, last_month[0], last_month[-1])
            wanted |= monthly_days
        if wanted:
            lo, hi = min(wanted), max(wanted)
            plan.exports = coalesce(lo, hi, set(days_between(lo, hi)) - wanted)
            for r in plan.exports:
                span = set(days_between(r.start, r.end))
                why = [w for w, days in (("missed by REST", missed), ("vanished orders", vanished)) if days & span]
                plan.reasons[str(r)] = ", ".join(why) or "monthly reconciliation"
        out.append(plan)
    return out


def export_needs(data_dir: str | Path, account: str, now_ms: int, settings: Settings) -> list[MarketPlan]:
    """:func:`plan_daily_exports` as ``settings`` configure it, at ``now_ms``."""
    return plan_daily_exports(
        data_dir,
        account,
        day_of(now_ms),
        now_ms,
        since=settings.start_date,
        monthly=settings.monthly_reconciliation,
    )


def requests_of(plans: list[MarketPlan]) -> dict[tuple[date, date], tuple[str, ...]]:
    """The export windows of the plans, each with the markets whose plan holds it: a market is asked only for its
    own windows, never spends an id on a window only the other market needs."""
    out: dict[tuple[date, date], list[str]] = {}
    for p in plans:
        for r in p.exports:
            out.setdefault((r.start, r.end), []).append(p.market)
    return {window: tuple(markets) for window, markets in sorted(out.items())}


def ranges_of(plans: list[MarketPlan]) -> list[tuple[date, date]]:
    """The distinct export windows of the plans (one export request job covers both markets)."""
    return sorted({(r.start, r.end) for p in plans for r in p.exports})

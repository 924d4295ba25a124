"""Cost-based request planner for spot order history: it makes no call, it returns a :class:`SpotPlan`.

For every symbol it prices 24 h windows against an orderId cursor for the orders whose last update falls in the
range and picks the cheaper; it does the same for order lists, and reports the naive baselines beside its estimate.
Design: docs/design/spot-planner.md §Planning: two ways to fetch a symbol.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from pipeline.binance.facts import PAGE_LIMIT, SPOT_WEIGHTS, SPOT_ZERO_FILL_ARCHIVE_DAYS
from pipeline.spot.common import BlindSpot
from pipeline.spot.discovery import candidate_symbols, start_id
from pipeline.spot.index import SymbolActivity, SymbolIndex
from pipeline.times import DAY_MS, day_of, day_start_ms, day_window, days_between, fmt_ms, iso_ms
from pipeline.times import now_ms as wall_now_ms

logger = logging.getLogger(__name__)

Mode = Literal["backfill", "daily"]
Strategy = Literal["windows", "cursor", "skip"]
RECENT_DAYS = 30  # daily mode: a symbol with an update in the last 30 days counts as active


@dataclass
class SymbolPlan:
    """How one symbol will be fetched and what each option was estimated to cost (in calls of weight 20)."""

    symbol: str
    strategy: Strategy
    days: list[date]  # days a window strategy would query (only days that can hold updates)
    cursor_start: int | None  # orderId the cursor would start at (None: cursor not priceable)
    windows_calls: int
    cursor_calls: int | None
    reason: str
    cursor_from_start: bool = True
    cursor_prior_count: int = 0

    @property
    def calls(self) -> int:
        if self.strategy == "cursor":
            return self.cursor_calls or 0
        return self.windows_calls if self.strategy == "windows" else 0

    def summary(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "strategy": self.strategy,
            "calls": self.calls,
            "weight": self.calls * SPOT_WEIGHTS["all_orders"],
            "windows_calls": self.windows_calls,
            "cursor_calls": self.cursor_calls,
            "window_days": len(self.days),
            "cursor_start": self.cursor_start,
            "reason": self.reason,
        }


@dataclass
class ListPlan:
    strategy: Strategy
    days: list[date]
    cursor_start: int | None
    windows_calls: int
    cursor_calls: int | None
    reason: str

    @property
    def calls(self) -> int:
        if self.strategy == "cursor":
            return self.cursor_calls or 0
        return self.windows_calls if self.strategy == "windows" else 0

    def summary(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "calls": self.calls,
            "weight": self.calls * SPOT_WEIGHTS["all_order_lists"],
            "windows_calls": self.windows_calls,
            "cursor_calls": self.cursor_calls,
            "cursor_start": self.cursor_start,
            "reason": self.reason,
        }


class _Days:
    """Inclusive UTC days ``start``..``end`` and their millisecond bounds (what allOrders windows are made of)."""

    start: date
    end: date

    @property
    def start_ms(self) -> int:
        return day_start_ms(self.start)

    @property
    def end_ms(self) -> int:
        return day_window(self.end)[1]

    @property
    def days(self) -> list[date]:
        return days_between(self.start, self.end)


@dataclass
class SpotPlan(_Days):
    """A complete request plan for one run over [start, end] (inclusive UTC days)."""

    account: str
    start: date
    end: date
    mode: Mode
    now_ms: int
    symbols: list[SymbolPlan]
    order_lists: ListPlan
    baselines: dict[str, dict[str, Any]]
    blind_spots: list[BlindSpot] = field(default_factory=list)

    @property
    def est_calls(self) -> int:
        return sum(p.calls for p in self.symbols) + self.order_lists.calls

    @property
    def est_weight(self) -> int:
        return self.est_calls * SPOT_WEIGHTS["all_orders"]

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable description, for run metadata and logs."""
        by = {s: [p for p in self.symbols if p.strategy == s] for s in ("cursor", "windows", "skip")}
        return {
            "account": self.account,
            "mode": self.mode,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "days": len(self.days),
            "now": iso_ms(self.now_ms),
            "est_calls": self.est_calls,
            "est_weight": self.est_weight,
            "strategies": {
                s: {
                    "symbols": len(ps),
                    "calls": sum(p.calls for p in ps),
                    "weight": sum(p.calls for p in ps) * SPOT_WEIGHTS["all_orders"],
                }
                for s, ps in by.items()
            },
            "order_lists": self.order_lists.summary(),
            "symbols": [p.summary() for p in self.symbols],
            "baselines": self.baselines,
            "blind_spots": [b.to_dict() for b in self.blind_spots],
        }

    def describe(self) -> str:
        s = self.summary()
        lines = [
            f"spot plan {s['mode']} {s['start']}..{s['end']} ({s['days']} days): {s['est_calls']} calls, "
            f"weight {s['est_weight']}"
        ]
        for name, st in s["strategies"].items():
            lines.append(f"  {name:<8} {st['symbols']:>4} symbols {st['calls']:>6} calls weight {st['weight']}")
        ol = s["order_lists"]
        lines.append(f"  order lists: {ol['strategy']} {ol['calls']} calls ({ol['reason']})")
        for name, b in s["baselines"].items():
            lines.append(
                f"  baseline {name}: {b['symbols']} symbols x {b['days']} days = {b['calls']} calls, "
                f"weight {b['weight']}"
            )
        for p in self.symbols:
            if p.strategy != "skip":
                lines.append(
                    f"    {p.symbol:<14} {p.strategy:<7} {p.calls:>4} calls "
                    f"(windows {p.windows_calls}, cursor {p.cursor_calls}) {p.reason}"
                )
        for b in self.blind_spots:
            lines.append(f"  blind spot {b.kind}: {b.detail}")
        return "\n".join(lines)


def plan_spot_backfill(
    index: SymbolIndex,
    start: date,
    end: date,
    *,
    mode: Mode = "backfill",
    now_ms: int | None = None,
    symbols: list[str] | None = None,
    recent_days: int = RECENT_DAYS,
    log: Callable[[str], None] | None = None,
) -> SpotPlan:
    """Plan the requests for partitions ``start``..``end`` (inclusive). Makes no calls.

    mode="backfill": per symbol the cheaper of windows and cursor, over the index's candidate symbols.
    mode="daily": plain 24 h windows over the active symbols (recent orders, open orders, balances, explicit,
    lake), no cursor, no probe: the cheap scheduled run for yesterday.
    ``symbols`` overrides the candidate list (e.g. an explicit subset).
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    now = now_ms if now_ms is not None else wall_now_ms()
    ctx = _Range(start, end, now)
    if mode == "daily":
        chosen = symbols if symbols is not None else active_symbols(index, start, recent_days=recent_days)
        plans = [_daily_plan(sym, ctx) for sym in sorted(chosen)]
        lists = ListPlan("windows", ctx.days, None, len(ctx.days), None, "daily mode: plain 24 h windows")
    elif mode == "backfill":
        chosen = symbols if symbols is not None else candidate_symbols(index)
        plans = [_symbol_plan(index.get(sym), ctx) for sym in sorted(chosen)]
        lists = _list_plan(index, ctx)
    else:
        raise ValueError(f"mode must be 'backfill' or 'daily', not {mode!r}")
    plan = SpotPlan(
        index.account,
        start,
        end,
        mode,
        now,
        plans,
        lists,
        _baselines(index, ctx, [p.symbol for p in plans]),
        _plan_blind_spots(index, ctx, mode),
    )
    (log or logger.info)(plan.describe())
    return plan


def active_symbols(index: SymbolIndex, day: date, *, recent_days: int = RECENT_DAYS) -> list[str]:
    """Symbols a daily run asks about: evidence from balances/explicit/lake, open orders, or recent updates."""
    horizon = day_start_ms(day - timedelta(days=recent_days))
    out = []
    for sym, act in index.symbols.items():
        if act.blind_spot:
            continue
        recent = act.last_update_time is not None and act.last_update_time >= horizon
        if recent or act.has_open or set(act.evidence) & {"balance", "explicit", "lake"}:
            out.append(sym)
    return sorted(out)


# -- internals -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Range(_Days):
    start: date
    end: date
    now: int

    @property
    def last_day(self) -> date:
        """No update can lie after now: days beyond today are empty by construction."""
        return min(self.end, day_of(self.now))

    def clip(self, lo: date, hi: date) -> list[date]:
        lo, hi = max(lo, self.start), min(hi, self.last_day)
        return days_between(lo, hi) if lo <= hi else []


def _daily_plan(symbol: str, ctx: _Range) -> SymbolPlan:
    days = ctx.clip(ctx.start, ctx.end)
    return SymbolPlan(
        symbol, "windows" if days else "skip", days, None, len(days), None, "daily mode: plain 24 h windows"
    )


def _possible_days(act: SymbolActivity, ctx: _Range) -> tuple[list[date], str]:
    """Days in range that can hold an update of this symbol's orders, and why."""
    if act.count_exact and act.known_through is not None:
        spans = []
        if act.order_count and act.first_order_time is not None and act.last_update_time is not None:
            spans.append((day_of(act.first_order_time), day_of(act.last_update_time)))
        may_continue = act.status != "delisted" or bool(act.has_open)
        if may_continue:
            spans.append((day_of(act.known_through), ctx.end))
        days = sorted({d for lo, hi in spans for d in ctx.clip(lo, hi)})
        why = f"history known through {fmt_ms(act.known_through)}" + ("" if may_continue else ", delisted")
        return days, why
    lo = day_of(act.first_order_time) if act.first_order_time is not None else ctx.start
    return ctx.clip(lo, ctx.end), "history not fully known"


def _estimated_total(act: SymbolActivity, now: int) -> float | None:
    """Orders the symbol holds now: the known count plus new ones at the observed rate since knowledge ended."""
    if act.order_count is None:
        return None
    count = float(act.order_count)
    to = act.scanned_to_time or act.known_through
    if not count or act.first_order_time is None or to is None:
        return count
    if act.count_exact and not act.has_open and act.status == "delisted":
        return count
    span = max(to - act.first_order_time, DAY_MS)
    return count + count / span * max(now - to, 0)


def _cursor_estimate(act: SymbolActivity, ctx: _Range) -> tuple[int | None, int | None, bool, int, str]:
    """(start id, calls, from_start, prior_count, note) for an orderId cursor over this symbol."""
    total = _estimated_total(act, ctx.now)
    if total is None:
        return None, None, True, 0, "never probed: cursor cost unknown"
    if total == 0:
        return start_id(), 1, True, 0, "no orders known"
    stop = min(ctx.end_ms, ctx.now)
    if (
        act.settled_below_id is not None
        and act.settled_max_update is not None
        and act.settled_max_update < ctx.start_ms
        and act.settled_count is not None
    ):
        t0 = act.settled_max_update
        first, prior, from_start = act.settled_below_id, act.settled_count, False
        remaining = max(total - prior, 0.0)
    else:
        t0 = act.first_order_time or ctx.start_ms
        first, prior, from_start = (act.first_order_id or start_id()), 0, True
        remaining = total
    # the scan stops after the first page reaching past the range end: estimate the share placed before it
    frac = 1.0 if ctx.now <= t0 else min(max((stop - t0) / (ctx.now - t0), 0.0), 1.0)
    n = remaining * frac
    calls = max(1, math.ceil((n + 1) / PAGE_LIMIT))
    note = f"cursor from id {first}{' (settled checkpoint)' if not from_start else ''}, ~{n:.0f} orders"
    return first, calls, from_start, prior, note


def _symbol_plan(act: SymbolActivity, ctx: _Range) -> SymbolPlan:
    days, why = _possible_days(act, ctx)
    total = _estimated_total(act, ctx.now)
    windows = len(days)
    if days and total:
        # extra pages for busy days: at least one call per 1000 orders in range (uniform spread assumed)
        span = max(ctx.now - (act.first_order_time or ctx.start_ms), DAY_MS)
        in_range = total * min(len(days) * DAY_MS / span, 1.0)
        windows = max(windows, math.ceil((in_range + 1) / PAGE_LIMIT))
    first, cursor, from_start, prior, note = _cursor_estimate(act, ctx)
    if not days:
        return SymbolPlan(act.symbol, "skip", [], first, 0, cursor, f"no day in range can hold updates ({why})")
    if cursor is not None and cursor < windows:
        strategy: Strategy = "cursor"
    else:
        strategy = "windows"
    return SymbolPlan(act.symbol, strategy, days, first, windows, cursor, f"{why}; {note}", from_start, prior)


def _list_plan(index: SymbolIndex, ctx: _Range) -> ListPlan:
    lst = index.order_lists
    if lst.count_exact and lst.known_through is not None:
        spans = [(day_of(lst.known_through), ctx.end)]
        if lst.count and lst.first_time is not None and lst.last_time is not None:
            spans.append((day_of(lst.first_time), day_of(lst.last_time)))
        days = sorted({d for lo, hi in spans for d in ctx.clip(lo, hi)})
    else:
        days = ctx.clip(ctx.start, ctx.end)
    if lst.count is None:
        return ListPlan("windows", days, None, len(days), None, "order lists never probed")
    # No creation time on order lists (transactionTime is the last update), so the cursor cannot stop early.
    n = lst.count
    if lst.known_through and lst.first_time is not None and lst.count:
        n += lst.count / max(lst.known_through - lst.first_time, DAY_MS) * max(ctx.now - lst.known_through, 0)
    cursor = max(1, math.ceil((n + 1) / PAGE_LIMIT))
    first = lst.first_id if lst.first_id is not None else start_id()
    if not days:
        return ListPlan("skip", [], first, 0, cursor, "no day in range can hold order-list updates")
    strategy: Strategy = "cursor" if cursor < len(days) else "windows"
    return ListPlan(strategy, days, first, len(days), cursor, f"~{n:.0f} lists known")


def _baselines(index: SymbolIndex, ctx: _Range, planned: list[str]) -> dict[str, dict[str, Any]]:
    """Naive costs for comparison (computed, not executed). Lower bounds: no paging of busy days, no order lists."""
    days = len(ctx.days)
    active = [s for s in candidate_symbols(index) if s in set(planned)] or planned
    listed = index.listed_count or sum(1 for a in index.symbols.values() if a.status == "listed")
    extra = [s for s in active if index.get(s).status != "listed"]  # delisted pairs reached via the explicit list
    out = {}
    for name, n in (("windows_over_active", len(active)), ("windows_over_listed", listed + len(extra))):
        calls = n * days
        out[name] = {"symbols": n, "days": days, "calls": calls, "weight": calls * SPOT_WEIGHTS["all_orders"]}
    return out


def _plan_blind_spots(index: SymbolIndex, ctx: _Range, mode: Mode) -> list[BlindSpot]:
    out = []
    cutoff = day_of(ctx.now - SPOT_ZERO_FILL_ARCHIVE_DAYS * DAY_MS)
    if ctx.start < cutoff:
        out.append(
            BlindSpot(
                "archived",
                "orders that ended CANCELED/EXPIRED/EXPIRED_IN_MATCH with zero fill more "
                f"than {SPOT_ZERO_FILL_ARCHIVE_DAYS} days ago are archived by Binance (-2026) and not returned "
                "by allOrders",
                start=ctx.start.isoformat(),
                end=min(ctx.end, cutoff - timedelta(days=1)).isoformat(),
            )
        )
    for sym, act in sorted(index.symbols.items()):
        if act.blind_spot:
            out.append(BlindSpot("delisted", act.blind_spot, symbol=sym))
    probed = index.full_probe_completed_at
    if mode == "backfill" and probed is not None and ctx.end_ms > probed:
        empty = [s for s, a in index.symbols.items() if a.order_count == 0 and not a.evidence_beyond_probe]
        if empty:
            out.append(
                BlindSpot(
                    "stale_probe",
                    f"{len(empty)} listed symbols had no orders when probed at "
                    f"{fmt_ms(probed)}; orders placed on them later are not fetched unless balances, "
                    "the lake or ORDERLAKE_SPOT_SYMBOLS name them (re-run discovery with probe=True)",
                    start=max(ctx.start, day_of(probed)).isoformat(),
                    end=ctx.end.isoformat(),
                )
            )
    if mode == "daily":
        out.append(
            BlindSpot(
                "daily_scope",
                "daily mode asks only active symbols (recent orders, open orders, "
                "balances, explicit list, lake); a first order on any other symbol waits for the "
                "next backfill/probe",
            )
        )
    return out

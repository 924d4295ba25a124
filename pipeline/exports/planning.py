"""Pure planning helpers: coalescing uncovered UTC days into few <=1-year export requests.

Download ids are the scarce resource (about 10 a month, shared with the website), so the planner minimises the
NUMBER of create calls: a greedy left-to-right cover of the uncovered days with windows of at most
``EXPORT_MAX_SPAN_DAYS`` days. Greedy is optimal for covering points on a line with fixed-length intervals. A window
may therefore span a small already-covered hole between two gaps when that saves an id; it never starts or
ends on a covered day, and a fully covered range produces no request at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from pipeline.binance.facts import EXPORT_MAX_SPAN_DAYS
from pipeline.times import DAY_MS, day_end_ms, day_of, day_start_ms, days_between

# A window is at most EXPORT_MAX_SPAN_DAYS whole UTC days: [day0 00:00:00.000, last day 23:59:59.999], a span of
# 365 days minus 1 ms, below one year under every reading of "1 year".
MAX_SPAN_MS = EXPORT_MAX_SPAN_DAYS * DAY_MS - 1
# The scheduled refresh asks for the previous week: about 4-5 ids a month of the ~10 the website shares.
DEFAULT_REFRESH_DAYS = 7


def refresh_range(
    today: date, days: int = DEFAULT_REFRESH_DAYS, *, last_covered: date | None = None
) -> tuple[date, date]:
    """Range of a scheduled refresh run on ``today``: the ``days`` complete UTC days before it.

    It starts earlier when the last exported day (``last_covered``) is older, so a skipped or failed schedule
    run leaves no hole; already-covered days are removed later by the planner, so they cost nothing.
    """
    start = today - timedelta(days=days)
    if last_covered is not None:
        start = min(start, last_covered + timedelta(days=1))
    return start, today - timedelta(days=1)


@dataclass(frozen=True)
class PlannedRange:
    """One create call to make: whole UTC days, inclusive."""

    start: date
    end: date

    @property
    def start_ms(self) -> int:
        return day_start_ms(self.start)

    @property
    def end_ms(self) -> int:
        return day_end_ms(self.end)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def covered_days(intervals: Iterable[tuple[int, int]], start: date, end: date) -> set[date]:
    """Days of [start, end] FULLY inside one of the (start_ms, end_ms) inclusive intervals.

    A partially covered day counts as uncovered: better to re-export a day than to miss its orders.
    """
    out: set[date] = set()
    lo_all, hi_all = day_start_ms(start), day_end_ms(end)
    for lo, hi in intervals:
        if hi < lo_all or lo > hi_all:
            continue
        first = day_of(max(lo, lo_all))
        if day_start_ms(first) < lo:
            first += timedelta(days=1)
        last = day_of(min(hi, hi_all))
        if day_end_ms(last) > hi:
            last -= timedelta(days=1)
        d = first
        while d <= last:
            out.add(d)
            d += timedelta(days=1)
    return out


def coalesce(start: date, end: date, covered: set[date], max_days: int = EXPORT_MAX_SPAN_DAYS) -> list[PlannedRange]:
    """Fewest windows of <= max_days days that cover every uncovered day of [start, end] (greedy, optimal)."""
    if end < start:
        return []
    uncovered = [d for d in days_between(start, end) if d not in covered]
    out: list[PlannedRange] = []
    i = 0
    while i < len(uncovered):
        first = uncovered[i]
        limit = first + timedelta(days=max_days - 1)
        j = i
        while j + 1 < len(uncovered) and uncovered[j + 1] <= limit:
            j += 1
        out.append(PlannedRange(first, uncovered[j]))  # trimmed to the last uncovered day in the window
        i = j + 1
    return out

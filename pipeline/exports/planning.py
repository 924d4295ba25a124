"""Pure planning helpers: UTC day ranges <-> ms, and coalescing uncovered days into few <=1-year requests.

Download ids are the scarce resource (about 10 a month, shared with the website), so the planner minimises the
NUMBER of create calls: a greedy left-to-right cover of the uncovered days with windows of at most
``MAX_SPAN_DAYS`` days. Greedy is optimal for covering points on a line with fixed-length intervals. A window
may therefore span a small already-covered hole between two gaps when that saves an id; it never starts or
ends on a covered day, and a fully covered range produces no request at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

DAY_MS = 86_400_000
# Binance: "endTime - startTime must not exceed 1 year". Its notion of a year (365 d? calendar year? 366 d in a
# leap year?) is undocumented, so a window is at most 365 whole UTC days: [day0 00:00:00.000, day364
# 23:59:59.999], i.e. a span of 365 days minus 1 ms, which is below one year under every interpretation.
MAX_SPAN_DAYS = 365
MAX_SPAN_MS = MAX_SPAN_DAYS * DAY_MS - 1
# The scheduled refresh asks for the previous week: about 4-5 ids a month of the ~10 the website shares.
DEFAULT_REFRESH_DAYS = 7


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def day_end_ms(day: date) -> int:
    """Last millisecond of a UTC day (ranges are inclusive on both ends, as Binance's startTime/endTime)."""
    return day_start_ms(day) + DAY_MS - 1


def ms_to_day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date()


def days_between(start: date, end: date) -> list[date]:
    """Every day of [start, end] inclusive."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


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
        first = ms_to_day(max(lo, lo_all))
        if day_start_ms(first) < lo:
            first += timedelta(days=1)
        last = ms_to_day(min(hi, hi_all))
        if day_end_ms(last) > hi:
            last -= timedelta(days=1)
        d = first
        while d <= last:
            out.add(d)
            d += timedelta(days=1)
    return out


def coalesce(start: date, end: date, covered: set[date], max_days: int = MAX_SPAN_DAYS) -> list[PlannedRange]:
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

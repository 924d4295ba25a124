"""UTC day and millisecond helpers: the one place that turns epoch milliseconds into days and text.

Binance speaks epoch milliseconds; the lake is partitioned by UTC day. Ranges are inclusive on both ends, as
Binance's ``startTime``/``endTime`` are.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

DAY_MS = 86_400_000


def now_ms() -> int:
    return int(time.time() * 1000)


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def day_end_ms(day: date) -> int:
    """Last millisecond of a UTC day."""
    return day_start_ms(day) + DAY_MS - 1


def day_window(day: date) -> tuple[int, int]:
    """``[00:00:00.000, 23:59:59.999]`` of a UTC day: no gap and no overlap with the next day's window.

    One millisecond short of 24 h because Binance's bounds are inclusive: a window ending at the next midnight
    could return one order in two days' partitions.
    """
    return day_start_ms(day), day_end_ms(day)


def day_of(ms: int) -> date:
    """The UTC day an epoch-millisecond instant falls on."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date()


def days_between(start: date, end: date) -> list[date]:
    """Every day of ``[start, end]``, inclusive; empty when ``end < start``."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def month_of(ms: int) -> str:
    """``YYYY-MM`` (UTC) of an instant: the period of Binance's monthly export quota."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m")


def next_month_start_ms(month: str) -> int:
    """First millisecond of the month after ``month`` (``YYYY-MM``, UTC)."""
    y, m = (int(x) for x in month.split("-"))
    y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return int(datetime(y, m, 1, tzinfo=UTC).timestamp() * 1000)


def fmt_ms(ms: int | None) -> str:
    """An instant for people (messages, status): ``2024-03-05 08:00:01 UTC``; ``-`` when unknown."""
    if ms is None or ms < 0:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_ms(ms: int | None) -> str | None:
    """An instant for machines (JSON, metadata): RFC 3339 with milliseconds and ``Z``; None when unknown."""
    if ms is None or ms < 0:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

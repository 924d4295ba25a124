from datetime import date

from pipeline.times import (
    DAY_MS,
    day_end_ms,
    day_of,
    day_start_ms,
    day_window,
    days_between,
    fmt_ms,
    iso_ms,
    month_of,
    next_month_start_ms,
)

T = 1_709_625_601_234  # 2024-03-05 08:00:01.234 UTC


def test_one_format_for_people_and_one_for_machines() -> None:
    assert fmt_ms(T) == "2024-03-05 08:00:01 UTC"
    assert iso_ms(T) == "2024-03-05T08:00:01.234Z"
    # unknown: None, and Binance's -1 sentinel (expirationTimestamp while processing)
    assert fmt_ms(None) == fmt_ms(-1) == "-"
    assert iso_ms(None) is None and iso_ms(-1) is None


def test_day_windows_tile_the_timeline() -> None:
    leap = date(2024, 2, 29)
    start, end = day_window(leap)
    assert (start, end) == (day_start_ms(leap), day_end_ms(leap)) == (1_709_164_800_000, 1_709_164_800_000 + DAY_MS - 1)
    assert day_of(start) == day_of(end) == leap
    assert day_start_ms(date(2024, 3, 1)) == end + 1


def test_days_between_is_inclusive_and_empty_when_reversed() -> None:
    assert days_between(date(2024, 12, 31), date(2025, 1, 2)) == [
        date(2024, 12, 31),
        date(2025, 1, 1),
        date(2025, 1, 2),
    ]
    assert days_between(date(2025, 1, 2), date(2025, 1, 1)) == []


def test_months_roll_over_the_year() -> None:
    assert month_of(day_end_ms(date(2024, 12, 31))) == "2024-12"
    assert next_month_start_ms("2024-12") == day_start_ms(date(2025, 1, 1))
    assert next_month_start_ms("2024-02") == day_start_ms(date(2024, 3, 1))

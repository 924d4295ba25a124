"""The fleet's unit of work: a run's (account, day) partitions as contiguous ranges per account, and accounts that
run on whatever another account did."""

from datetime import date, timedelta

import pytest

from pipeline.errors import DataError
from pipeline.fleet import AccountDays, AccountsFailed, account_ranges, per_account

D = date(2024, 2, 27)


def test_ranges_are_contiguous_per_account_in_first_seen_order() -> None:
    keys = [("b", D + timedelta(days=i)) for i in (3, 1, 2)] + [("a", D), ("a", D + timedelta(days=2)), ("b", D)]
    assert account_ranges(keys) == [
        AccountDays("b", D, D + timedelta(days=3)),
        AccountDays("a", D, D),
        AccountDays("a", D + timedelta(days=2), D + timedelta(days=2)),
    ]
    assert account_ranges([]) == []
    # across a leap day and a month end: days, not dates' digits
    assert account_ranges([("a", D + timedelta(days=i)) for i in range(5)]) == [AccountDays("a", D, date(2024, 3, 2))]


def test_one_account_failing_runs_every_other_and_names_it() -> None:
    ranges = [AccountDays(name, D, D) for name in ("a", "b", "c", "d")]
    done = []

    def work(rng: AccountDays) -> str:
        if rng.account == "b":
            raise DataError("b is broken")
        if rng.account == "c":
            raise KeyError("a bug")
        done.append(rng.account)
        return rng.account.upper()

    seen = []
    with pytest.raises(AccountsFailed) as info:
        for rng, result in per_account(ranges, work):
            seen.append((rng.account, result))
    assert seen == [("a", "A"), ("d", "D")] and done == ["a", "d"]
    assert str(info.value).startswith("2 account(s) failed: b (2024-02-27..2024-02-27): DataError: b is broken | c (")


def test_nothing_fails_nothing_is_raised() -> None:
    assert list(per_account([AccountDays("a", D, D)], lambda r: 1)) == [(AccountDays("a", D, D), 1)]

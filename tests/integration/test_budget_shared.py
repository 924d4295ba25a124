"""The shared budget stores (ORDERLAKE_BUDGET_URL) on the loopback PostgreSQL and Redis of deploy/services.sh: a
change under the lock is never lost between processes, budgets behind one egress IP share their windows and those
behind another do not, and the URL's password shows up nowhere."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from pipeline.binance.budget import WeightBudget
from pipeline.binance.budget_shared import PostgresStore, RedisStore, redacted
from pipeline.binance.budget_store import open_store
from pipeline.errors import ConfigurationError

PROCESSES, INCREMENTS = 4, 150


def _increment(url: str, directory: str) -> None:
    store = open_store(url, directory)
    for _ in range(INCREMENTS):
        with store.locked("counter") as state:
            state["n"] = state.get("n", 0) + 1


@pytest.fixture(params=["postgres", "redis"])
def store_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue({"postgres": "postgres_url", "redis": "redis_url"}[request.param])


def test_no_change_is_lost_between_processes(store_url: str, tmp_path) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_increment, args=(store_url, str(tmp_path / f"m{i}"))) for i in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    with open_store(store_url, tmp_path / "check").locked("counter") as state:
        assert state == {"n": PROCESSES * INCREMENTS}


def test_budgets_share_windows_per_egress_ip(store_url: str, tmp_path) -> None:
    def budget(egress: str) -> WeightBudget:
        store = open_store(store_url, tmp_path / "unused")
        return WeightBudget("spot", "api.binance.com", store, egress=egress, now_ms=lambda: 90_000, sleep=_no_sleep)

    a, b, other = budget("203.0.113.7"), budget("203.0.113.7"), budget("198.51.100.9")
    a.reserve(100)
    b.reserve(20)
    other.reserve(7)
    assert a.snapshot()["windows"] == {"60000": {"1": 120}}
    assert other.snapshot()["windows"] == {"60000": {"1": 7}}
    a.block(95_000, "418", "banned")
    with pytest.raises(Exception, match="banned"):
        b.reserve(1)  # every worker behind that IP stops
    other.reserve(1)


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected wait of {seconds} s")


def test_password_is_redacted_and_a_wrong_one_names_the_variable(store_url: str) -> None:
    assert "***" in redacted(store_url) and "orderlake-services" not in redacted(store_url)
    wrong = store_url.replace("orderlake-services", "not-the-password")
    cls = PostgresStore if wrong.startswith("postgres") else RedisStore
    with pytest.raises(ConfigurationError, match="ORDERLAKE_BUDGET_URL") as err:
        cls(wrong)
    assert "not-the-password" not in str(err.value)

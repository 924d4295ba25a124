"""Shared fixtures: every test starts from a clean environment and a throwaway Dagster instance."""

import os

import pytest

from tests.support.exports import ids_within_ledger as ids_within_ledger  # autouse: ids handed out ≤ ledger count
from tests.support.services import postgres_url as postgres_url  # the loopback services (deploy/services.sh)
from tests.support.services import redis_url as redis_url
from tests.support.services import s3_service as s3_service


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the environment: a developer's BINANCE_* / ORDERLAKE_* / AWS_* variables (or make's
    DAGSTER_HOME) must never leak into a test, and no test may reach a real Binance host by default."""
    for name in list(os.environ):
        if name.startswith(("BINANCE_", "ORDERLAKE_", "AWS_")) or name == "DAGSTER_HOME":
            monkeypatch.delenv(name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ladder's rung is the folder: `-m unit`, `-m integration` and `-m dagster` select one rung.

    Modules marked ``long`` (minutes each) run first: `make test` hands whole files to its workers in this order, so
    the longest start while the others fill the remaining workers, instead of one of them running alone at the end."""
    for item in items:
        rung = item.path.parent.name
        if rung in ("unit", "integration", "dagster"):
            item.add_marker(getattr(pytest.mark, rung))
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: the order is kept otherwise

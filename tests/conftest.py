"""Shared fixtures: every test starts from a clean environment and a throwaway Dagster instance."""

import os

import pytest


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the environment: a developer's BINANCE_* / ORDERLAKE_* variables (or make's
    DAGSTER_HOME) must never leak into a test, and no test may reach a real Binance host by default."""
    for name in list(os.environ):
        if name.startswith(("BINANCE_", "ORDERLAKE_")) or name == "DAGSTER_HOME":
            monkeypatch.delenv(name)

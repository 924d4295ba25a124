"""Helpers for the Dagster-level tests: Settings pointed at a sandbox; the lake compared with the sandbox's truth."""

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pipeline.sandbox import testing
from pipeline.sandbox.server import SandboxExchange
from pipeline.settings import Settings
from pipeline.storage import lake
from pipeline.storage.schemas import spec_for, spot_orders
from pipeline.times import day_start_ms, day_window

# Columns a fetch stamps on (not part of the order as Binance holds it).
STAMPS = ("ingested_at", "source")


def sandbox_settings(monkeypatch: pytest.MonkeyPatch, sx: SandboxExchange, data_dir: Path, **changes: Any) -> Settings:
    """Settings pointed at ``sx`` and ``data_dir`` (pacing scaled like the sandbox), with ``changes``, for
    ``build_definitions(settings)`` and ``main(argv, settings)``.

    Only the sandbox's key and secret also go into the environment: resources pass secrets as ``EnvVar``
    references, which Dagster resolves from the environment at run start (never from stored config)."""
    settings = testing.sandbox_settings(sx, data_dir, data_dir / "budget").replace(**changes)
    for name, value in settings.secret_environment().items():
        monkeypatch.setenv(name, value)
    return settings


def lake_rows(data_dir: Path, table: str, account: str = "main", drop: Iterable[str] = STAMPS) -> list[dict]:
    """Every row of a lake table (wherever the lake lives), without the stamp columns, sorted by the table's key."""
    spec = spec_for(table)
    found = lake.account_dataset(data_dir, table, account)
    rows = found.to_table().to_pylist() if found is not None else []
    dropped = set(drop)
    return sorted(
        ({k: v for k, v in r.items() if k not in dropped} for r in rows), key=lambda r: tuple(r[k] for k in spec.key)
    )


def truth_spot_orders(truth: dict[str, Any], start: date, end: date) -> list[dict]:
    """The sandbox's orders whose last update falls on start..end, converted exactly like the pipeline does."""
    lo, hi = day_start_ms(start), day_window(end)[1]
    rows = [
        {k: v for k, v in r.items() if k != "archived"}
        for r in truth["spot_orders"]
        if not r.get("archived") and lo <= r["updateTime"] <= hi
    ]
    table = spot_orders.from_api(rows, account="main", source="x", ingested_at=0)
    return sorted(
        ({k: v for k, v in r.items() if k not in STAMPS} for r in table.to_pylist()),
        key=lambda r: (r["symbol"], r["order_id"]),
    )


def partition_days(data_dir: Path, table: str, account: str = "main") -> list[date]:
    return lake.list_partitions(data_dir, table, account)

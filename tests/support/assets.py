"""Helpers for the Dagster-level tests: sandbox environments, and the lake compared with the sandbox's truth."""

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from pipeline.sandbox.server import SandboxExchange
from pipeline.sandbox.testing import sandbox_env
from pipeline.storage import lake
from pipeline.storage.schemas import module_for, spot_orders
from pipeline.times import day_start_ms, day_window

# Columns a fetch stamps on (not part of the order as Binance holds it).
STAMPS = ("ingested_at", "source")


def use_sandbox(monkeypatch: pytest.MonkeyPatch, sx: SandboxExchange, data_dir: Path, **extra: str) -> dict[str, str]:
    """Point every setting at ``sx`` and ``data_dir`` (pacing scaled like the sandbox)."""
    env = {
        **sandbox_env(sx, data_dir),
        "ORDERLAKE_TIME_SCALE": str(sx.cfg.time_scale),
        "ORDERLAKE_BUDGET_DIR": str(data_dir / "budget"),
        **extra,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def lake_rows(data_dir: Path, table: str, account: str = "main", drop: Iterable[str] = STAMPS) -> list[dict]:
    """Every row of a lake table, without the stamp columns, sorted by the table's key."""
    root = lake.account_dir(data_dir, table, account)
    mod = module_for(table)
    rows = ds.dataset(str(root), format="parquet", schema=mod.SCHEMA).to_table().to_pylist()
    dropped = set(drop)
    return sorted(
        ({k: v for k, v in r.items() if k not in dropped} for r in rows), key=lambda r: tuple(r[k] for k in mod.KEY)
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

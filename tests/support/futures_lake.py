"""Put a sandbox's futures orders into a lake as the orders REST tail or the exports would (each version into the
partition of its update day), so the trades and income tails can be tested on their own; and trades or income
records as an export would store them, for the reconciliation."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from pipeline.storage.schemas import futures_income, futures_orders, futures_trades
from pipeline.storage.schemas.columns import EXPORT
from pipeline.storage.versions import write_day
from pipeline.times import day_of


def store_truth_orders(data_dir: Path, truth: dict, market: str, account: str = "main") -> None:
    by_day: dict = defaultdict(list)
    for o in truth[f"{market}_orders"]:
        by_day[day_of(o["updateTime"])].append(o)
    for day, rows in by_day.items():
        table = futures_orders.from_api(
            rows, account=account, market=market, source="rest", ingested_at=datetime.now(UTC)
        )
        write_day(data_dir, futures_orders.MARKETS[market], account, day, table)


def store_as_export(data_dir: Path, table: str, rows: list[dict], market: str, account: str = "main") -> None:
    """API-shaped trade or income records written as an export would write them (``source`` = export), each into
    the partition of its UTC day."""
    module = futures_trades if table in futures_trades.MARKETS.values() else futures_income
    by_day: dict = defaultdict(list)
    for r in rows:
        by_day[day_of(r["time"])].append(r)
    for day, day_rows in by_day.items():
        new = module.from_api(day_rows, account=account, market=market, source=EXPORT, ingested_at=datetime.now(UTC))
        write_day(data_dir, table, account, day, new)

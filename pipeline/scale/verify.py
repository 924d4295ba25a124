"""Does an account's lake equal its sandbox truth? Read through a pyarrow filesystem (local or S3), so the same check
proves a lake on object storage. The lake layout is the contract's: ``<root>/<table>/account=<a>/date=…/*.parquet``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow.dataset as ds
import pyarrow.fs as pafs

from pipeline.storage.schemas import futures_orders, spec_for, spot_orders
from pipeline.times import day_start_ms, day_window

STAMPS = ("ingested_at", "source", "account")
# What an export file carries (docs/export-files.md): REST-only fields are not compared for the export tables.
EXPORT_COLUMNS = (
    "order_id", "symbol", "type", "side", "position_side", "price", "avg_price", "orig_qty", "executed_qty",
    "cum_quote", "stop_price", "status", "client_order_id", "time_in_force", "activate_price", "price_rate", "time",
    "update_time",
)  # fmt: skip
TABLES = {"spot": "spot_orders", "usdm": "futures_orders", "pm": "pm_um_orders"}
TRUTH = {"usdm": "usdm_orders", "pm": "pm_um_orders"}
MARKET_COLUMN = {"usdm": "usdm", "pm": "pm_um"}


@dataclass(frozen=True)
class Comparison:
    account: str
    table: str
    lake_rows: int
    truth_rows: int
    equal: bool


def read_lake(fs: pafs.FileSystem, root: str, table: str, account: str) -> list[dict[str, Any]]:
    path = f"{root.rstrip('/')}/{table}/account={account}"
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return []
    return ds.dataset(path, filesystem=fs, format="parquet", schema=spec_for(table).schema).to_table().to_pylist()


def _key(row: dict) -> tuple:
    return (row["symbol"], row["order_id"])


def expected(truth: dict[str, Any], market: str, start: date, end: date) -> list[dict[str, Any]]:
    lo, hi = day_start_ms(start), day_window(end)[1]
    if market == "spot":
        rows = [
            {k: v for k, v in r.items() if k != "archived"}
            for r in truth["spot_orders"]
            if not r.get("archived") and lo <= r["updateTime"] <= hi
        ]
        table = spot_orders.from_api(rows, account="-", source="truth", ingested_at=0)
        return sorted(({k: v for k, v in r.items() if k not in STAMPS} for r in table.to_pylist()), key=_key)
    rows = [o for o in truth[TRUTH[market]] if lo <= o["updateTime"] <= hi]
    table = futures_orders.from_api(rows, account="-", market=MARKET_COLUMN[market], source="truth", ingested_at=0)
    return sorted(({k: r[k] for k in EXPORT_COLUMNS} for r in table.to_pylist()), key=_key)


def compare(
    fs: pafs.FileSystem, root: str, account: str, market: str, truth: dict[str, Any], start: date, end: date
) -> Comparison:
    """The account's table of ``market`` against the truth of ``start``..``end`` (the range the demo backfilled)."""
    rows = read_lake(fs, root, TABLES[market], account)
    columns = None if market == "spot" else EXPORT_COLUMNS
    got = sorted(
        ({k: v for k, v in r.items() if k not in STAMPS and (columns is None or k in columns)} for r in rows), key=_key
    )
    want = expected(truth, market, start, end)
    return Comparison(account, TABLES[market], len(got), len(want), got == want)

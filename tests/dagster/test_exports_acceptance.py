"""Issue 10's acceptance: for every export dialect and both row-selection rules, over more than a year (two exports
per market) with orders straddling the boundary between them, ``orderlake backfill --select exports`` lands
``futures_orders`` and ``pm_um_orders`` equal to the sandbox's truth, ``time`` and ``update_time`` included.

The account is small (one order a day per market) and the sandbox's durations run 3600x faster; links live on the
sandbox's clock, so a loaded machine cannot outlast them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from assets.cli import main
from pipeline.exports.ledger import ExportLedger
from pipeline.sandbox.export_dialects import DIALECTS, SELECTIONS
from pipeline.sandbox.testing import start_sandbox
from pipeline.storage.schemas import futures_orders
from pipeline.times import day_end_ms, day_of, day_start_ms
from tests.support.assets import lake_rows, sandbox_settings
from tests.support.exports import EXPORT_SANDBOX, FROM_EXPORT

MARKETS = {"usdm": "futures_orders", "pm_um": "pm_um_orders"}
SANDBOX = {**EXPORT_SANDBOX, "futures_orders_per_day": 1.0, "pm_orders_per_day": 1.0, "export_processing_seconds": 600}
# The Simplified Chinese website export has no position side, client order id, time in force or trailing-stop columns
# (docs/export-files.md §USDⓈ-M order history: column orders).
NOT_IN = {"zh": {"position_side", "client_order_id", "time_in_force", "activate_price", "price_rate"}}


def _boundary(truth: dict, yesterday: date) -> date:
    """The latest day both markets have an order created on or before and last updated after (a straddler)."""
    for d in (yesterday - timedelta(days=n) for n in range(2, 34)):
        if all(
            any(day_of(o["time"]) <= d < day_of(o["updateTime"]) <= yesterday for o in truth[m])
            for m in (
                "usdm_orders",
                "pm_um_orders",
            )
        ):
            return d
    raise AssertionError("the sandbox account has no order straddling any day of the last month")


def _truth(orders: list[dict], market: str, lo: int, hi: int, rule: str, columns: list[str]) -> list[dict]:
    """The orders an export of lo..hi lists under ``rule``, converted like the pipeline converts API rows."""
    field = "updateTime" if rule == "update" else "time"
    want = [o for o in orders if lo <= o[field] <= hi]
    rows = futures_orders.from_api(want, account="main", market=market, source="truth", ingested_at=0).to_pylist()
    return sorted(({k: r[k] for k in columns} for r in rows), key=lambda r: (r["symbol"], r["order_id"]))


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.parametrize("selection", SELECTIONS)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_backfill_exports_equals_the_truth(tmp_path, monkeypatch, capsys, dialect: str, selection: str) -> None:
    data = tmp_path / "data"
    precision = 1 if dialect == "ms" else 1000  # millisecond files carry millisecond orders
    cfg = {**SANDBOX, "export_dialect": dialect, "export_selection": selection, "futures_time_precision_ms": precision}
    with start_sandbox(**cfg) as sx:
        truth = sx.truth()
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        start = _boundary(truth, yesterday) - timedelta(days=364)  # the first export ends on the boundary day
        settings = sandbox_settings(monkeypatch, sx, data, start_date=start)
        argv = ["backfill", "--start", start.isoformat(), "--end", yesterday.isoformat(), "--select", "exports"]
        assert main([*argv, "--quiet"], settings) == 0, capsys.readouterr().err

        assert sx.stats()["export_ids_created"] == {"usdm": 2, "pm_um": 2}
        lo, hi = day_start_ms(start), day_end_ms(yesterday)
        columns = [c for c in FROM_EXPORT if c not in NOT_IN.get(dialect, set())]
        for market, table in MARKETS.items():
            entries = sorted(ExportLedger(data).entries(market=market), key=lambda e: e.start_ms)
            assert [e.status for e in entries] == ["ingested", "ingested"]
            assert (entries[0].start_ms, entries[1].end_ms) == (lo, hi) and entries[0].end_ms + 1 == entries[1].start_ms
            cut = entries[0].end_ms
            orders = truth[f"{market}_orders"]
            assert any(o["time"] <= cut < o["updateTime"] <= hi for o in orders), "no order straddles the exports"
            if dialect == "ms":
                assert any(o["time"] % 1000 for o in orders)
            got = sorted(
                ({k: r[k] for k in columns} for r in lake_rows(data, table)), key=lambda r: (r["symbol"], r["order_id"])
            )
            want = _truth(orders, market, lo, hi, selection, columns)
            assert got == want and len(want) > 300, (market, len(got), len(want))

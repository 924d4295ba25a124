"""Acceptance of issue 12: two years of USDⓈ-M and PM history, ``orderlake backfill --select all``, then 30 simulated
days of ``orderlake daily`` (the sandbox clock advanced a day at a time).

The lake equals the truth, zero-fill cancels included (REST drops them after 3 days, so the daily run must catch
them); the backfill spends at most one download id per market per year of history, the daily runs none; an order
open in an export and filled later shows FILLED after the daily run of the day it filled.
"""

from datetime import timedelta
from decimal import Decimal

import pytest

from assets.cli import main
from pipeline.exports.ledger import ExportLedger
from pipeline.futures import status as futures_status
from pipeline.futures.stored import latest_orders
from pipeline.sandbox.testing import start_sandbox
from pipeline.storage.schemas import futures_orders
from pipeline.times import DAY_MS, day_of, day_start_ms, month_of, now_ms
from tests.support.assets import lake_rows, sandbox_settings

pytestmark = [pytest.mark.slow, pytest.mark.long, pytest.mark.timeout(1800)]  # minutes on a loaded 2-core machine
YEARS = 2
DAYS = 30
START_AGO = DAYS + 2  # the clock starts this many days in the past, so every simulated day is a Dagster partition
MARKETS = ("usdm", "pm_um")
OPEN = ("NEW", "PARTIALLY_FILLED")
COMPARED = (("status", "status"), ("update_time", "updateTime"), ("time", "time"))
DECIMALS = (("executed_qty", "executedQty"), ("cum_quote", "cumQuote"), ("avg_price", "avgPrice"))


@pytest.fixture(scope="module")
def sandbox():
    start = (now_ms() // DAY_MS - START_AGO) * DAY_MS + 13 * 3_600_000
    with start_sandbox(
        now_ms=start,
        server_time_at_market=True,
        listed_symbols=20,
        active_symbols=2,
        history_days=2,
        futures_history_days=365 * YEARS,
        futures_late_finals=False,
        time_scale=60.0,
        # serverTime runs a month behind the real clock, which the export chain reads link expiry against
        export_link_ttl_seconds=(START_AGO + 7) * 86_400 * 60.0,
    ) as sx:
        yield sx


def _ids(data, market: str, month: str | None = None) -> int:
    entries = ExportLedger(data).entries(market=market, kind="order", account="main")
    return sum(1 for e in entries if e.download_id and month in (None, month_of(e.requested_at)))


def _lake(data, market: str) -> dict:
    return {(r["symbol"], r["order_id"]): r for r in lake_rows_latest(data, market)}


def lake_rows_latest(data, market: str) -> list[dict]:
    rows = lake_rows(data, futures_orders.MARKETS[market])
    best: dict = {}
    for r in rows:
        k = (r["symbol"], r["order_id"])
        if k not in best or r["update_time"] > best[k]["update_time"]:
            best[k] = r
    return list(best.values())


def _by_key(orders: list[dict]) -> dict:
    return {(o["symbol"], o["orderId"]): o for o in orders}


def _equal(row: dict, truth: dict) -> bool:
    ms = {c: int(row[c].timestamp() * 1000) for c in ("time", "update_time")}
    return (
        row["status"] == truth["status"]
        and ms["update_time"] == truth["updateTime"]
        and ms["time"] == truth["time"]
        and all(Decimal(truth[t]) == row[c] for c, t in DECIMALS)
    )


def test_two_years_backfill_then_thirty_daily_runs(sandbox, tmp_path, monkeypatch, capsys) -> None:
    data = tmp_path / "data"
    now = sandbox.exchange.clock.market()
    first = day_of(now) - timedelta(days=365 * YEARS)
    settings = sandbox_settings(monkeypatch, sandbox, data, start_date=first)
    yesterday = day_of(now) - timedelta(days=1)
    assert main(["backfill", "--start", first.isoformat(), "--end", yesterday.isoformat(), "--quiet"], settings) == 0
    spent = {m: _ids(data, m) for m in MARKETS}
    assert all(0 < n <= YEARS for n in spent.values()), spent
    # orders an export showed open (open at the backfill, created on a day the exports covered) that fill at least
    # two days later, during the simulated month
    exported_until = day_start_ms(day_of(now) - timedelta(days=2))
    later = {m: _by_key(sandbox.truth(now + DAYS * DAY_MS)[f"{m}_orders"]) for m in MARKETS}
    tracked = {
        m: {
            k: later[m][k]["updateTime"]
            for k, o in _by_key(sandbox.truth()[f"{m}_orders"]).items()
            if o["status"] in OPEN
            and o["time"] < exported_until
            and later[m][k]["status"] == "FILLED"
            and later[m][k]["updateTime"] > now + 2 * DAY_MS
        }
        for m in MARKETS
    }
    assert sum(map(len, tracked.values())) > 0
    for day in range(DAYS):
        sandbox.advance(days=1)
        # the futures part of the daily job (the whole job on the last day, with the catalog and the status)
        assert main(["daily", "--quiet", "--select", "all" if day == DAYS - 1 else "futures"], settings) == 0
        day_end = day_start_ms(day_of(sandbox.exchange.clock.market()))  # the run covered up to yesterday's end
        for m in MARKETS:
            due = [k for k, filled in tracked[m].items() if filled < day_end]
            if due:
                stored = latest_orders(data, "main", futures_orders.MARKETS[m])
                assert all(stored[k].status == "FILLED" for k in due), [k for k in due if stored[k].status != "FILLED"]
    assert {m: _ids(data, m) for m in MARKETS} == spent  # the daily runs spent no download id
    # the status reads the wall clock, which the sandbox's clock was set START_AGO days behind: read it at noon of
    # that day, so a run that crosses midnight (or a month's end) sees the days it would have seen before
    wall = day_start_ms(day_of(now) + timedelta(days=START_AGO)) + 12 * 3_600_000
    monkeypatch.setattr(futures_status, "wall_ms", lambda: wall)
    capsys.readouterr()
    assert main(["status"], settings) == 0
    status = capsys.readouterr().out
    assert "USDⓈ-M:" in status and "PM UM:" in status
    for m in MARKETS:  # the backfill's ids were spent that (real) month; nothing is planned
        assert f"download ids {month_of(wall)}: {_ids(data, m, month_of(wall))} spent, 0 planned" in status
    truth = sandbox.truth()
    for m in MARKETS:
        want = {(o["symbol"], o["orderId"]): o for o in truth[f"{m}_orders"] if day_of(o["time"]) >= first}
        got = _lake(data, m)
        zero_fill = [k for k, o in want.items() if o["status"] == "CANCELED" and o["executedQty"] == "0"]
        assert zero_fill and all(k in got for k in zero_fill)
        assert set(got) >= set(want)
        wrong = [k for k in want if not _equal(got[k], want[k])]
        assert not wrong, [(k, got[k]["status"], want[k]["status"]) for k in wrong[:5]]

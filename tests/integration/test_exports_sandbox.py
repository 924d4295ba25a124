"""Integration: one-year USDⓈ-M and PM exports against the sandbox exchange, real client, time-scaled clock.

Request -> several polls while processing (a new chain object on every tick, as a restarted sensor would have)
-> retrieval -> daily partitions, which must equal the sandbox's truth exactly. The sandbox counts the download
ids it hands out; the ledger must count exactly the same, and a second backfill of the range must spend none.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import pipeline.sandbox.testing as testing
from pipeline.binance import BinanceClient
from pipeline.binance.exports import EXPORT_ENDPOINTS
from pipeline.exports import checks
from pipeline.exports.chain import ExportChain
from pipeline.exports.ledger import ExportLedger
from pipeline.exports.retrieval import table_for
from pipeline.settings import Settings
from pipeline.storage import lake
from pipeline.storage.schemas import futures_orders
from tests.support.exports import EXPORT_SANDBOX as SANDBOX
from tests.support.exports import EXPORT_SPEED as SPEED
from tests.support.exports import FROM_EXPORT
from tests.support.lake_files import lake_duckdb, lake_glob


def _poll_like_a_sensor(client: BinanceClient, tmp_path, exchange, timeout: float = 30.0) -> dict[str, list[str]]:
    """Ticks until every open id is completed; each tick uses a fresh ledger + chain (restart-proof). The sandbox
    holds every export in "processing" until each id was polled so twice, however slow this machine is."""
    seen: dict[str, list[str]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chain = ExportChain(
            client,
            ExportLedger(tmp_path),
            data_dir=tmp_path,
            account="main",
            allow_http_loopback=True,
            time_scale=1 / SPEED,
        )
        for o in chain.poll_due():
            seen.setdefault(o.run_key, []).append(o.status)
        open_ids = {str(e.download_id) for e in chain.ledger.entries(status="processing")}
        exchange.exports_held = any(seen.get(i, []).count("processing") < 2 for i in open_ids)
        if not open_ids:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"exports still processing after {timeout} s: {seen}")


@pytest.mark.slow
def test_one_year_exports_equal_the_sandbox_truth(tmp_path) -> None:
    with testing.start_sandbox(**SANDBOX) as sx:
        client = BinanceClient.from_settings(Settings.from_env(testing.sandbox_env(sx, tmp_path)))
        try:
            chain = ExportChain(
                client,
                ExportLedger(tmp_path),
                data_dir=tmp_path,
                account="main",
                allow_http_loopback=True,
                time_scale=1 / SPEED,
            )
            today = datetime.now(tz=UTC).date()
            start, end = today - timedelta(days=365), today - timedelta(days=1)
            for ep in (e for e in EXPORT_ENDPOINTS.values() if e.kind == "order"):  # trades: test_trade_exports
                res = chain.request(ep, start, end, sleep=time.sleep)
                assert len(res) == 1 and res.done  # 365 days: one id
            sx.exchange.exports_held = True  # released by the poll loop once every id was seen processing twice
            polls = _poll_like_a_sensor(client, tmp_path, sx.exchange)
            assert len(polls) == 2 and all(
                s[-1] == "completed" and s.count("processing") >= 2 for s in polls.values()
            ), polls
            for did in polls:  # run_key = download id
                ExportChain(
                    client,
                    ExportLedger(tmp_path),
                    data_dir=tmp_path,
                    account="main",
                    allow_http_loopback=True,
                    time_scale=1 / SPEED,
                ).ingest(did)
            truth = sx.truth()
            ids_created = sx.stats()["export_ids_created"]
            assert list(chain.request(ep, start, end)) == []  # already exported: nothing spent
            for e in chain.ledger.entries():
                _assert_equals_truth(tmp_path, e, truth[f"{e.market}_orders"])
            assert ids_created == {"usdm": 1, "pm_um": 1} == sx.stats()["export_ids_created"]
            assert sum(e.counts_quota for e in chain.ledger.entries()) == 2
        finally:
            client.close()


def _assert_equals_truth(data_dir, entry, orders) -> None:
    table = table_for(entry.market, entry.kind)
    want = [o for o in orders if entry.start_ms <= o["updateTime"] <= entry.end_ms]
    assert entry.status == "ingested" and entry.rows == entry.parsed_rows == entry.data_lines == len(want) > 100
    assert entry.utc_offset_minutes == 480 and entry.file_name.endswith(".zip")
    events = ExportLedger(data_dir).events(entry.id)
    [inferred] = [ev["detail"] for ev in events if ev["event"] == "utc_offset_inferred"]
    assert inferred["offset_minutes"] == 480 and inferred["matched"] > 0  # proven by allOrders, not just the name
    expected = futures_orders.from_api(want, account="main", market=entry.market, source="truth", ingested_at=0)
    got = lake.account_dataset(data_dir, table, "main").to_table().to_pylist()
    key = lambda r: (r["symbol"], r["order_id"])  # noqa: E731
    assert [{k: r[k] for k in FROM_EXPORT} for r in sorted(got, key=key)] == [
        {k: r[k] for k in FROM_EXPORT} for r in sorted(expected.to_pylist(), key=key)
    ]
    assert len(lake.list_partitions(data_dir, table, "main")) == 365  # every day, empty ones included
    assert [r.name for r in checks.export_rules(data_dir, table, entry) if not r.passed] == []
    glob = lake_glob(data_dir, table)
    # DECIMAL(38,8) x DECIMAL(38,8) must not overflow (docs/binance-facts.md §Decimal and id types)
    with lake_duckdb(data_dir) as con:
        notional = con.execute(f"SELECT sum(price * executed_qty) FROM read_parquet('{glob}')").fetchone()[0]
    assert notional == sum(Decimal(o["price"]) * Decimal(o["executedQty"]) for o in want)

"""Integration: the export chain against the sandbox exchange with the real client, on a fast clock.

The sandbox counts the download ids it hands out; the ledger must count exactly the same (no id lost, none
spent twice), and a second backfill of the same range must not spend any.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pipeline.binance as binance
import pipeline.binance.exports  # noqa: F401
import pipeline.sandbox.testing as testing
from pipeline.config import Settings
from pipeline.exports.chain import ExportChain
from pipeline.exports.ledger import ExportLedger

SPEED = 60.0  # sandbox runs 60x faster; the chain's durations are multiplied by 1/SPEED


def _export_ids_created(stats: dict[str, Any]) -> int:
    """Total export ids in sx.stats(), whatever the exact key layout (int or per-endpoint dict)."""
    total = 0
    for key, value in stats.items():
        if "export" in key.lower() and ("id" in key.lower() or "create" in key.lower()):
            total += sum(value.values()) if isinstance(value, dict) else int(value)
    return total


def test_chain_against_sandbox(tmp_path, monkeypatch) -> None:
    with testing.start_sandbox(time_scale=SPEED, history_days=60) as sx:
        for k, v in testing.sandbox_env(sx, tmp_path).items():
            monkeypatch.setenv(k, v)
        client = binance.BinanceClient.from_settings(Settings.from_env())
        try:
            chain = ExportChain(client, ExportLedger(tmp_path), data_dir=tmp_path, account="main",
                                allow_http_loopback=True, time_scale=1 / SPEED)
            today = datetime.now(tz=UTC).date()
            start, end = today - timedelta(days=400), today - timedelta(days=1)  # 400 days -> 2 ids each
            for ep in binance.exports.EXPORT_ENDPOINTS.values():
                res = chain.request(ep, start, end, sleep=time.sleep)
                assert len(res) == 2 and res.done
            done = chain.wait_until_complete(timeout=120, sleep=time.sleep)
            ready = {o.download_id for o in done if o.status == "completed"}
            assert len(ready) == 4
            for did in sorted(ready):
                raw = chain.retrieve(did)
                assert raw.size > 0 and raw.path.suffix in (".zip", ".gz", ".csv")
            again = [chain.request(ep, start, end) for ep in binance.exports.EXPORT_ENDPOINTS.values()]
            assert all(list(r) == [] for r in again)
            entries = chain.ledger.entries()
            assert sum(e.counts_quota for e in entries) == _export_ids_created(sx.stats()) == 4
            assert {e.status for e in entries} == {"retrieved"}
        finally:
            client.close()

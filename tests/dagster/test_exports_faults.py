"""Issue 10's acceptance under faults, through `orderlake` against the sandbox:

* half of all file transfers cut short: `orderlake backfill --select all` still completes with exact data;
* an empty member, a header-only file, a file cut at a row boundary or inside its last row: the lake stays byte for
  byte as it was, the ledger entry says why, `orderlake exports reingest ID` parses the kept raw file again, and no
  download id is spent on it (the sandbox counts them);
* a link that expired before retrieval: status and the failure's metadata say so and what a new id costs; none is
  requested.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from assets.cli import main
from assets.definitions import build_definitions
from assets.exports.assets import CHAINS
from assets.exports.sensors import retrieval_request
from pipeline.exports.ledger import ExportLedger
from pipeline.exports.states import LedgerState
from pipeline.sandbox.testing import start_sandbox
from pipeline.storage.schemas import futures_orders
from pipeline.times import day_end_ms, day_start_ms
from tests.support.assets import lake_rows, sandbox_settings, truth_spot_orders
from tests.support.exports import EXPORT_SANDBOX, FROM_EXPORT
from tests.support.futures_lake import store_truth_orders
from tests.support.lake_files import lake_files, lake_paths

MARKETS = {"usdm": "futures_orders", "pm_um": "pm_um_orders"}
SMALL = {**EXPORT_SANDBOX, "futures_history_days": 60, "export_processing_seconds": 600}


def _range(days: int) -> tuple[date, date]:
    end = datetime.now(UTC).date() - timedelta(days=1)
    return end - timedelta(days=days - 1), end


def _exported(truth: dict, market: str, start: date, end: date) -> list[dict]:
    lo, hi = day_start_ms(start), day_end_ms(end)
    want = [o for o in truth[f"{market}_orders"] if lo <= o["updateTime"] <= hi]
    rows = futures_orders.from_api(want, account="main", market=market, source="truth", ingested_at=0).to_pylist()
    return sorted(({k: r[k] for k in FROM_EXPORT} for r in rows), key=lambda r: (r["symbol"], r["order_id"]))


def _lake(data: Path, table: str, start: date, end: date) -> list[dict]:
    """The latest stored version of each order updated in the range, as the views show it: with `--select all` the
    orders REST tail also stores versions of the recent days, and of orders updated after the range on their own day."""
    latest: dict[int, dict] = {}
    for r in lake_rows(data, table):
        row = {k: r[k] for k in FROM_EXPORT}
        if not start <= row["update_time"].date() <= end:
            continue
        kept = latest.get(row["order_id"])
        if kept is None or row["update_time"] > kept["update_time"]:
            latest[row["order_id"]] = row
    return sorted(latest.values(), key=lambda r: (r["symbol"], r["order_id"]))


@pytest.mark.slow
def test_backfill_all_completes_exactly_with_half_the_transfers_cut(tmp_path, monkeypatch, capsys) -> None:
    data = tmp_path / "data"
    start, end = _range(30)
    with start_sandbox(**SMALL, fault_rate_truncate=0.5) as sx:
        settings = sandbox_settings(monkeypatch, sx, data, start_date=start)
        argv = ["backfill", "--start", start.isoformat(), "--end", end.isoformat(), "--select", "all", "--quiet"]
        assert main(argv, settings) == 0, capsys.readouterr().err
        stats, truth = sx.stats(), sx.truth()
        assert stats["faults"]["truncate"] >= 1 and stats["export_file_downloads"] >= 3
        assert stats["export_ids_created"] == {"usdm": 1, "pm_um": 1}
        for market, table in MARKETS.items():
            want = _exported(truth, market, start, end)
            assert _lake(data, table, start, end) == want and want
        ledger = ExportLedger(data)
        failed = [ev for e in ledger.entries() for ev in ledger.events(e.id) if ev["event"] == "download_failed"]
        assert failed, "a cut transfer should be retried, and each attempt recorded"
        got_spot = [
            {k: v for k, v in r.items() if k not in ("ingested_at", "source")} for r in lake_rows(data, "spot_orders")
        ]
        assert got_spot == truth_spot_orders(truth, start, end)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("damage", "why"),
    [
        ("empty_member", "0 bytes"),
        ("header_only", "neither data rows nor the line"),
        ("cut_rows", "lacks"),
        ("cut_mid_row", "may be cut short"),
    ],
)
def test_a_damaged_file_leaves_the_lake_as_it_was(tmp_path, monkeypatch, capsys, damage: str, why: str) -> None:
    data = tmp_path / "data"
    start, end = _range(20)
    with start_sandbox(**SMALL, export_damage=damage) as sx:
        settings = sandbox_settings(monkeypatch, sx, data, start_date=start)
        truth = sx.truth()
        for market in MARKETS:  # what the lake held before (as the orders REST tail or an earlier export left it)
            store_truth_orders(data, truth, market)
        before = lake_files(data)
        argv = ["backfill", "--start", start.isoformat(), "--end", end.isoformat(), "--select", "exports", "--quiet"]
        assert main(argv, settings) == 1
        err = capsys.readouterr().err
        assert why in err and "reingest" in err, err[-3000:]
        assert lake_files(data) == before
        ledger = ExportLedger(data)
        entries = ledger.entries()
        assert len(entries) == 2 and all(
            e.status is LedgerState.RETRIEVED and why in (e.error or "") for e in entries
        ), [(e.status, e.error) for e in entries]
        assert all(e.raw_path and (data / e.raw_path).is_file() for e in entries)  # kept for a re-ingest
        downloads = sx.stats()["export_file_downloads"]

        for e in entries:  # after a fix: parsed again from raw/, refused again the same way, nothing downloaded
            assert main(["exports", "reingest", str(e.id)], settings) == 2
            assert why in capsys.readouterr().err
        assert lake_files(data) == before
        assert main(argv, settings) == 1  # the range stays blocked: a second backfill spends no id
        capsys.readouterr()
        assert sx.stats()["export_ids_created"] == {"usdm": 1, "pm_um": 1}
        assert sx.stats()["export_file_downloads"] == downloads
        assert sum(e.counts_quota for e in ExportLedger(data).entries()) == 2


def test_a_header_only_file_is_accepted_as_empty_only_by_hand(tmp_path, monkeypatch, capsys) -> None:
    data = tmp_path / "data"
    end = datetime.now(UTC).date() - timedelta(days=100)  # before the account's first futures order: truly empty
    start = end - timedelta(days=4)
    with start_sandbox(**SMALL, export_damage="header_only") as sx:
        settings = sandbox_settings(monkeypatch, sx, data, start_date=start)
        argv = ["backfill", "--start", start.isoformat(), "--end", end.isoformat(), "--select", "exports", "--quiet"]
        assert main(argv, settings) == 1
        assert "--accept-empty" in capsys.readouterr().err and not lake_paths(data, "futures_orders")
        [entry] = ExportLedger(data).entries(market="usdm")
        assert main(["exports", "reingest", str(entry.id), "--accept-empty"], settings) == 0
        assert "0 rows in 5 partitions" in capsys.readouterr().out
        assert ExportLedger(data).get(entry.id).status is LedgerState.INGESTED
        assert len([p for p in lake_paths(data, "futures_orders") if p.endswith(".parquet")]) == 5
        assert sx.stats()["export_ids_created"] == {"usdm": 1, "pm_um": 1}


def test_a_link_that_expired_before_retrieval_is_reported_and_no_id_is_requested(tmp_path, monkeypatch, capsys) -> None:
    data = tmp_path / "data"
    start, end = _range(10)
    with start_sandbox(**SMALL) as sx:
        settings = sandbox_settings(monkeypatch, sx, data, start_date=start)
        argv = ["backfill", "--start", start.isoformat(), "--end", end.isoformat(), "--select", "exports", "--quiet"]
        assert main([*argv, "--no-wait"], settings) == 0
        sx.advance(days=1, ms=60_000)  # the files were generated, then their 24 h links ran out on Binance's clock
        assert main(argv, settings) == 1
        err = capsys.readouterr().err
        assert "link expired" in err and "never requested automatically" in err and "A new id costs 1 of the" in err
        assert {e.status for e in ExportLedger(data).entries()} == {LedgerState.EXPIRED}

        assert main(["status"], settings) == 0
        out = capsys.readouterr().out
        assert "expired (need a new id): 2" in out and "A new id costs 1 of the" in out, out

        spec = next(c for c in CHAINS if c.market == "usdm")
        entry = ExportLedger(data).entries(market="usdm")[0]
        res = (
            build_definitions(settings)
            .resolve_job_def(spec.retrieval_job)
            .execute_in_process(
                instance=dg.DagsterInstance.ephemeral(),
                tags=dict(retrieval_request(spec, entry).tags),
                raise_on_error=False,
            )
        )
        failure = next(e for e in res.all_events if e.is_step_failure).step_failure_data.user_failure_data
        assert failure.metadata["link_expired"].value is True
        assert "never requested automatically" in failure.metadata["new_id_cost"].value
        assert sx.stats()["export_ids_created"] == {"usdm": 1, "pm_um": 1}
        assert sx.stats()["export_file_downloads"] == 0

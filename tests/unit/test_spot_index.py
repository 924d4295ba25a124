"""The shared symbol index: concurrent writers (Dagster runs, the CLI) never drop each other's updates."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from pipeline.spot.index import SymbolIndex

N = 6
ROWS = [{"orderId": 7, "time": 1_000, "updateTime": 2_000, "status": "FILLED"}]


def _update(data_dir: str, account: str, symbol: str, loaded: Any) -> None:
    """Load, wait until every process has loaded the same file, then learn something new and save."""
    index = SymbolIndex.load(data_dir, account)
    loaded.wait()
    index.get(symbol).add_evidence("explicit")
    index.get("BTCUSDT").add_evidence("explicit" if symbol.endswith("0USDT") else "lake")
    index.record_window_rows(symbol, ROWS)
    index.listed_count = 300
    index.save()


def _run_concurrently(tmp_path: Path, jobs: list[tuple[str, str]]) -> None:
    ctx = multiprocessing.get_context("fork")
    loaded = ctx.Barrier(len(jobs))
    procs = [ctx.Process(target=_update, args=(str(tmp_path), acc, sym, loaded)) for acc, sym in jobs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * len(jobs)


def test_concurrent_updates_of_one_account_are_all_kept(tmp_path: Path) -> None:
    seed = SymbolIndex.load(tmp_path, "main")
    seed.get("BTCUSDT").add_evidence("balance")
    seed.save()
    _run_concurrently(tmp_path, [("main", f"SYM{i}USDT") for i in range(N)])
    index = SymbolIndex.load(tmp_path, "main")
    assert sorted(index.symbols) == sorted(["BTCUSDT", *(f"SYM{i}USDT" for i in range(N))])
    for i in range(N):
        act = index.symbols[f"SYM{i}USDT"]
        assert act.evidence == ["explicit", "fetch"] and act.last_order_id == 7 and act.last_update_time == 2_000
    assert sorted(index.symbols["BTCUSDT"].evidence) == ["balance", "explicit", "lake"]
    assert index.listed_count == 300


def test_concurrent_updates_of_different_accounts_are_all_kept(tmp_path: Path) -> None:
    _run_concurrently(tmp_path, [(f"acct{i}", "ETHUSDT") for i in range(N)])
    for i in range(N):
        assert SymbolIndex.load(tmp_path, f"acct{i}").symbols["ETHUSDT"].last_order_id == 7


def test_a_save_keeps_the_other_process_fields_and_its_own_changes(tmp_path: Path) -> None:
    first, second = SymbolIndex.load(tmp_path, "main"), SymbolIndex.load(tmp_path, "main")
    first.get("BTCUSDT").order_count = 12
    first.full_probe_completed_at = 5_000
    first.save()
    held = second.get("BTCUSDT")  # a reference held across the save stays the live object
    held.last_update_time = 9_000
    second.save()
    assert held.order_count == 12 and second.full_probe_completed_at == 5_000
    again = SymbolIndex.load(tmp_path, "main")
    act = again.symbols["BTCUSDT"]
    assert (act.order_count, act.last_update_time, again.full_probe_completed_at) == (12, 9_000, 5_000)
    assert not list((tmp_path / "state").glob("*.tmp"))

"""Two-step partition writes (stage, then publish), durable new directories, and the lake's sort."""

from __future__ import annotations

import errno
import os
import random
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.storage import atomic, lake
from pipeline.storage.schemas import futures_orders, spec_for, spot_orders

DAY = date(2024, 3, 5)
T0 = 1709596800000  # 2024-03-05 00:00:00 UTC


def futures(n: int, seed: int = 1) -> pa.Table:
    rng = random.Random(seed)
    rows = [
        {
            "symbol": rng.choice(["BTCUSDT", "ETHUSDT", "币安人生USDT", "A"]),
            "orderId": rng.randint(1, 50),
            "time": T0,
            "updateTime": T0 + rng.randint(0, 5) * 1000,
            "price": str(rng.randint(1, 99)),
        }
        for _ in range(n)
    ]
    return futures_orders.from_api(rows, account="main", market="usdm", source="s", ingested_at=T0)


def staging_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data" / "tmp" / "stage"
    d.mkdir(parents=True)
    return d


def test_stage_writes_outside_the_lake_and_publish_moves_it_in(tmp_path: Path) -> None:
    data = tmp_path / "data"
    staged = lake.stage_partition(staging_dir(tmp_path), "futures_orders", "main", DAY, futures(50))
    assert staged.path.parent == data / "tmp" / "stage" and not staged.path.name.endswith(".parquet")
    assert staged.rows == 50 and staged.bytes == staged.path.stat().st_size
    assert not (data / "lake").exists()  # nothing visible before publishing
    res = lake.publish_partition(data, staged)
    assert res == lake.WriteResult(lake.partition_path(data, "futures_orders", "main", DAY), 50, staged.bytes)
    assert not staged.path.exists() and os.listdir(res.path.parent) == ["part-0.parquet"]
    back = lake.read_partition(data, "futures_orders", "main", DAY)
    assert back.equals(lake.sort_for_lake("futures_orders", futures(50)).combine_chunks())


def test_stage_validates_like_write_partition(tmp_path: Path) -> None:
    stage = staging_dir(tmp_path)
    with pytest.raises(lake.PartitionMismatch, match="outside 2024-03-06"):
        lake.stage_partition(stage, "futures_orders", "main", date(2024, 3, 6), futures(3))
    with pytest.raises(lake.PartitionMismatch, match="account"):
        lake.stage_partition(stage, "futures_orders", "other", DAY, futures(3))
    with pytest.raises(ValueError, match="partition value"):
        lake.stage_partition(stage, "futures_orders", "../x", DAY, futures(3))
    assert list(stage.iterdir()) == []


def test_crash_while_staging_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crashing_write(table: pa.Table, fh: object) -> None:
        fh.write(b"PAR1 partial")  # type: ignore[attr-defined]
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(lake, "_write_file", crashing_write)
    stage = staging_dir(tmp_path)
    with pytest.raises(OSError, match="simulated"):
        lake.stage_partition(stage, "futures_orders", "main", DAY, futures(3))
    assert list(stage.iterdir()) == []


def test_publish_replaces_an_existing_partition(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old = lake.write_partition(data, "futures_orders", "main", DAY, futures(5))
    staged = lake.stage_partition(staging_dir(tmp_path), "futures_orders", "main", DAY, futures(7, seed=2))
    new = lake.publish_partition(data, staged)
    assert new.path == old.path and os.listdir(new.path.parent) == ["part-0.parquet"]
    assert pq.read_metadata(new.path).num_rows == 7


def test_publish_across_filesystems_copies_then_renames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    lake.write_partition(data, "futures_orders", "main", DAY, futures(5))
    staged = lake.stage_partition(staging_dir(tmp_path), "futures_orders", "main", DAY, futures(9, seed=3))
    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if Path(src).parent != Path(dst).parent:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst)

    monkeypatch.setattr(lake.os, "replace", replace)
    res = lake.publish_partition(data, staged)
    assert not staged.path.exists() and os.listdir(res.path.parent) == ["part-0.parquet"]
    assert pq.read_metadata(res.path).num_rows == 9


def test_new_directories_are_made_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[Path] = []
    monkeypatch.setattr(atomic, "fsync_path", lambda p: synced.append(Path(p)))
    data = tmp_path / "data"
    res = lake.write_partition(data, "futures_orders", "main", DAY, futures(2))
    part = res.path.parent
    # the parent of every directory created (data, lake, table, account, date=...), then the rename's directory
    assert synced == [tmp_path, data, data / "lake", part.parent.parent, part.parent, part]
    synced.clear()
    lake.write_partition(data, "futures_orders", "main", DAY, futures(2))
    assert synced == [part]  # existing directories: only the rename is synced


@pytest.mark.parametrize("n", [2, 7, 300])
def test_sort_matches_arrow_sort_by(n: int) -> None:
    t = futures(n, seed=n)
    chunked = pa.Table.from_batches(t.to_batches(max_chunksize=max(1, n // 3)))
    want = t.sort_by([(k, "ascending") for k in spec_for("futures_orders").sort_by])
    assert lake.sort_for_lake("futures_orders", chunked).equals(want)


def test_sorted_table_is_returned_as_is_and_nulls_fall_back_to_arrow() -> None:
    done = lake.sort_for_lake("futures_orders", futures(100))
    assert lake.sort_for_lake("futures_orders", done) is done
    rows = [
        {
            "symbol": s,
            "orderId": i,
            "orderListId": -1,
            "time": T0,
            "updateTime": T0 + i,
            "price": "1",
            "origQty": "1",
            "executedQty": "0",
            "cummulativeQuoteQty": "0",
            "status": "NEW",
            "type": "LIMIT",
            "side": "BUY",
        }
        for i, s in enumerate(["B", "A", "B", "A"])
    ]
    t = spot_orders.from_api(rows, account="main", source="s", ingested_at=T0)
    t = t.set_column(
        t.schema.get_field_index("update_time"),
        t.schema.field("update_time"),
        pa.array([None, T0 + 5, T0 + 1, None], t.schema.field("update_time").type),
    )
    got = lake.sort_for_lake("spot_orders", t)
    assert got.equals(t.sort_by([(k, "ascending") for k in spot_orders.SPEC.sort_by]))

"""Ingest through the chain: the raw copy -> daily partitions, the UTC offset (REST inference, file name, served
name, configuration), failures recorded in the ledger, metadata and the export's data-quality rules."""

from __future__ import annotations

import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.exports import checks
from pipeline.exports.parsing import UnknownTimezone, ZipBombRefused
from pipeline.sandbox import export_dialects
from pipeline.storage import lake
from pipeline.storage.schemas import futures_orders
from tests.support.exports import (
    FROM_EXPORT,
    Clock,
    FakeClient,
    FileServer,
    Route,
    api_orders,
    create_and_complete,
    make_chain,
    make_error,
    zipped,
)
from tests.support.lake_files import lake_paths

JAN = [date(2025, 1, 1) + timedelta(days=i) for i in range(31)]  # create_and_complete's range


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


def ready(tmp_path: Path, server: FileServer, body: bytes, *, route: Route | None = None, **kw: Any):
    """A chain whose one export (January 2025) is completed with a link to ``body``; returns (chain, client, id)."""
    server.routes["/f/export"] = route or Route(body=body)
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock, **kw)
    return chain, client, create_and_complete(chain, client, clock, server.url("/f/export"))


def lake_rows(data_dir: Path, table: str = "futures_orders") -> list[dict[str, Any]]:
    return [
        r
        for d in lake.list_partitions(data_dir, table, "main")
        for r in lake.read_partition(data_dir, table, "main", d).to_pylist()
    ]


def test_ingest_infers_offset_and_partitions_equal_the_orders(tmp_path, server) -> None:
    orders = api_orders()
    chain, client, did = ready(tmp_path, server, zipped(orders, 330))
    client.futures.orders = orders  # REST still returns the export's last week
    result = chain.ingest(did)
    # one call per symbol of the file's last days (Portfolio Margin requires a symbol), each under 7 days
    assert sorted(client.futures.symbols) == sorted({o["symbol"] for o in orders})
    for start, end in client.futures.calls:
        assert end == int(datetime(2025, 2, 1, tzinfo=UTC).timestamp() * 1000) - 1 and end - start < 7 * 86_400_000
    e = chain.ledger.by_download_id(did)
    assert (e.status, e.utc_offset_minutes, e.rows, e.parsed_rows, e.data_lines) == (
        "ingested",
        330,
        len(orders),
        len(orders),
        len(orders),
    )
    assert sorted(e.partitions) == [d.isoformat() for d in JAN] and sum(e.partitions.values()) == len(orders)
    inferred = [ev["detail"] for ev in chain.ledger.events(e.id) if ev["event"] == "utc_offset_inferred"]
    assert inferred[0]["offset_minutes"] == 330 and inferred[0]["matched"] >= 10
    want = futures_orders.from_api(orders, account="main", market="usdm", source="x", ingested_at=0).to_pylist()
    key = lambda r: r["order_id"]  # noqa: E731
    got = sorted(lake_rows(tmp_path), key=key)
    assert [{k: r[k] for k in FROM_EXPORT} for r in got] == [
        {k: r[k] for k in FROM_EXPORT} for r in sorted(want, key=key)
    ]
    assert {r["utc_offset_minutes"] for r in got} == {330} and {r["download_id"] for r in got} == {did}
    assert result.warnings == []
    assert [r.name for r in checks.export_rules(tmp_path, "futures_orders", e) if not r.passed] == []
    meta = chain.entry_metadata(did)
    assert (meta["quota_used"], meta["quota_remaining"], meta["avg_cost_ms"]) == (1, 9, 7_241_837)
    assert meta["rows_per_partition"] == e.partitions and meta["utc_offset_minutes"] == 330
    assert meta["expected_ready_at"].endswith("UTC") and "url" not in meta
    seen, calls = len(server.seen), len(client.futures.calls)
    chain.ingest(did, infer_offset=False)  # re-ingest (parser fix): from the raw copy, the file's label
    assert len(server.seen) == seen and len(client.futures.calls) == calls
    assert chain.ledger.by_download_id(did).utc_offset_minutes == 330


def test_inferred_offset_wins_over_a_wrong_label(tmp_path, server) -> None:
    orders = api_orders()
    chain, client, did = ready(tmp_path, server, zipped(orders, 180, label=480))
    client.futures.orders = orders
    result = chain.ingest(did)
    assert result.utc_offset_minutes == 180 and result.offset_source == "proven"
    assert any("labels differ" in w and "UTC+8" in w for w in result.warnings)
    calls = client.futures.calls  # per symbol of the file's last days, each window shorter than 7 days
    assert calls and all(end - start < 7 * 86_400_000 for start, end in calls)
    assert None not in client.futures.symbols
    by_id = {r["order_id"]: r for r in lake_rows(tmp_path)}
    assert all(by_id[o["orderId"]]["update_time"].timestamp() * 1000 == o["updateTime"] for o in orders)


def test_plain_csv_offset_from_the_served_name_or_configuration(tmp_path, server) -> None:
    orders = api_orders(10)
    body = export_dialects.build_csv(orders, uid=1, offset_minutes=-360, dialect="api")
    named = Route(
        body=body,
        headers={
            "Content-Disposition": 'attachment; filename="Binance-Futures-Order-History-202502010000(UTC--6).csv"'
        },
    )
    chain, _, did = ready(tmp_path / "a", server, body, route=named)
    assert chain.retrieve(did).path.name == f"{did}.csv"  # the label is no longer in the raw copy's name
    assert chain.ingest(did).utc_offset_minutes == -360
    assert chain.ledger.by_download_id(did).file_name.endswith("(UTC--6).csv")
    # no label anywhere and no REST overlap: refused, recorded, nothing written; configuration then settles it
    chain, _, did = ready(tmp_path / "b", server, body)
    with pytest.raises(UnknownTimezone, match="ORDERLAKE_EXPORT_UTC_OFFSET_MINUTES"):
        chain.ingest(did)
    assert [ev["event"] for ev in chain.ledger.events()][-1] == "ingest_failed"
    assert chain.ledger.by_download_id(did).status == "retrieved" and lake_rows(tmp_path / "b") == []
    chain.utc_offset_minutes = -360
    assert chain.ingest(did).rows == len(orders)
    assert {r["utc_offset_minutes"] for r in lake_rows(tmp_path / "b")} == {-360}


def test_disagreeing_rest_orders_stop_the_ingest(tmp_path, server) -> None:
    orders = api_orders()
    chain, client, did = ready(tmp_path, server, zipped(orders, 480))
    client.futures.orders = [dict(o, time=o["time"] + 3_600_000 * (i % 2)) for i, o in enumerate(orders)]
    with pytest.raises(UnknownTimezone, match="different"):
        chain.ingest(did)
    assert lake_rows(tmp_path) == [] and chain.ledger.by_download_id(did).status == "retrieved"


def test_rest_failure_falls_back_to_the_file_label(tmp_path, server, caplog) -> None:
    orders = api_orders()
    chain, client, did = ready(tmp_path, server, zipped(orders, 330))
    client.futures.error = make_error("BadSymbol", "-1102 Mandatory parameter 'symbol' was not sent", http_status=400)
    assert chain.ingest(did).utc_offset_minutes == 330
    assert "offset inference" in caplog.text and "-1102" in caplog.text
    entry = chain.ledger.by_download_id(did)
    assert entry.offset_source == "file-name label"


def test_zip_bomb_is_stored_raw_but_refused_at_ingest(tmp_path, server) -> None:
    bomb = tmp_path / "bomb.zip"
    with (
        zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf,
        zf.open("Binance-Futures-Order-History-202502010000(UTC+8).csv", "w") as member,
    ):
        for _ in range(64):
            member.write(b"\0" * (1 << 20))
    chain, _, did = ready(tmp_path / "data", server, bomb.read_bytes())
    with pytest.raises(ZipBombRefused, match="decompression bomb"):
        chain.ingest(did)
    e = chain.ledger.by_download_id(did)
    assert e.status == "retrieved" and e.size == bomb.stat().st_size  # raw copy kept for inspection
    failed = [ev for ev in chain.ledger.events(e.id) if ev["event"] == "ingest_failed"]
    assert len(failed) == 1 and "bomb" in failed[0]["detail"]["error"]
    assert not lake_paths(tmp_path / "data")

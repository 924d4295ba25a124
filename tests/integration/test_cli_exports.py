"""`orderlake exports list|resolve|reingest`: the export ledger by hand, without Dagster (a loopback file server
stands in for Binance's download host)."""

from __future__ import annotations

from datetime import date

import pytest

from assets.cli import main
from pipeline.exports.errors import ExportRequestUnknown
from pipeline.exports.verify import RefusedExport
from pipeline.sandbox import export_dialects
from pipeline.settings import Settings
from pipeline.storage import lake
from tests.support.exports import (
    USDM,
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
from tests.support.lake_files import lake_paths, remove_lake


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


def _lake(data_dir) -> dict[int, dict]:
    return {
        r["order_id"]: r
        for d in lake.list_partitions(data_dir, "futures_orders", "main")
        for r in lake.read_partition(data_dir, "futures_orders", "main", d).to_pylist()
    }


def test_reingest_reparses_the_raw_file_with_the_recorded_offset_and_no_network(tmp_path, server, capsys) -> None:
    orders = api_orders()
    server.routes["/f/export"] = Route(body=zipped(orders, 180, label=480))  # the file's label is wrong
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    did = create_and_complete(chain, client, clock, server.url("/f/export"))
    client.futures.orders = orders  # REST proves the offset: 180, not the label's 480
    assert chain.ingest(did).utc_offset_minutes == 180
    before = _lake(tmp_path)
    entry = chain.ledger.by_download_id(did)
    remove_lake(tmp_path)  # as if a parser fix needed the partitions written again
    seen, rest_calls, creates = len(server.seen), len(client.futures.calls), len(client.creates)

    assert main(["exports", "reingest", str(entry.id)], Settings(data_dir=tmp_path)) == 0

    out = capsys.readouterr().out
    assert f"re-ingested #{entry.id} (download id {did}" in out and f"{len(orders)} rows" in out
    assert "UTC offset 180 min" in out and "no download id spent" in out
    assert (len(server.seen), len(client.futures.calls), len(client.creates)) == (seen, rest_calls, creates)
    after = _lake(tmp_path)
    assert after.keys() == before.keys() and len(after) == len(orders)
    for order_id, row in after.items():  # the same instants as the first ingest: the offset was kept
        assert row["update_time"] == before[order_id]["update_time"] and row["utc_offset_minutes"] == 180
    again = chain.ledger.get(entry.id)
    assert (again.status, again.download_id, again.partitions) == ("ingested", did, entry.partitions)
    assert len(chain.ledger.entries()) == 1


def test_a_file_whose_last_row_may_be_cut_is_accepted_only_by_hand(tmp_path, server, capsys) -> None:
    orders = api_orders()  # the legacy dialect ends each row with `Order No`; no line break after the last one
    _, body = export_dialects.build_export(
        orders, dialect="legacy", offset_minutes=0, uid=1, created_ms=1_738_368_000_000, suffix="a", final_newline=False
    )
    server.routes["/f/export"] = Route(body=body)
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    did = create_and_complete(chain, client, clock, server.url("/f/export"))
    with pytest.raises(RefusedExport, match="--accept-last-line"):
        chain.ingest(did)
    entry = chain.ledger.by_download_id(did)
    assert "may be cut short" in (entry.error or "") and not lake_paths(tmp_path)
    settings, seen = Settings(data_dir=tmp_path), len(server.seen)
    assert main(["exports", "reingest", str(entry.id)], settings) == 2
    assert "--accept-last-line" in capsys.readouterr().err and not lake_paths(tmp_path)

    assert main(["exports", "reingest", str(entry.id), "--accept-last-line"], settings) == 0
    assert f"{len(orders)} rows" in capsys.readouterr().out and len(_lake(tmp_path)) == len(orders)
    assert (len(server.seen), len(client.creates)) == (seen, 1)  # nothing downloaded, no new download id
    assert chain.ledger.get(entry.id).status == "ingested"


def test_reingest_without_a_downloaded_file_says_what_to_do(tmp_path, capsys) -> None:
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    [entry] = chain.request(USDM, date(2025, 1, 1), date(2025, 1, 31))  # processing: no file yet
    assert main(["exports", "reingest", str(entry.id)], Settings(data_dir=tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("orderlake exports reingest: ") and "no downloaded file to re-ingest" in err
    assert "Traceback" not in err and not lake_paths(tmp_path)
    assert main(["exports", "reingest", "999"], Settings(data_dir=tmp_path)) == 2
    assert "no export ledger entry #999" in capsys.readouterr().err


def test_resolve_releases_or_attaches_an_unknown_entry(tmp_path, capsys) -> None:
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    client.create_error = make_error("OutcomeUnknown", "read timeout after send")
    with pytest.raises(ExportRequestUnknown) as unknown:
        chain.request(USDM, date(2024, 1, 1), date(2024, 3, 31))
    assert "orderlake exports resolve" in str(unknown.value)  # the message names the command that exists
    first = unknown.value.entry_id
    settings = Settings(data_dir=tmp_path)

    assert main(["exports", "resolve", str(first)], settings) == 0
    assert capsys.readouterr().out.startswith("released: ")
    assert chain.ledger.get(first).status == "released"

    clock.advance(3600)  # past the pacing between two create calls
    with pytest.raises(ExportRequestUnknown) as unknown:
        chain.request(USDM, date(2024, 1, 1), date(2024, 3, 31))
    second = unknown.value.entry_id
    assert main(["exports", "resolve", str(second), "--download-id", "555"], settings) == 0
    assert capsys.readouterr().out.startswith("attached: ")
    assert (chain.ledger.get(second).status, chain.ledger.get(second).download_id) == ("processing", "555")

    assert main(["exports", "resolve", str(second)], settings) == 2  # processing: nothing to resolve
    err = capsys.readouterr().err
    assert err.startswith("orderlake exports resolve: ") and "Traceback" not in err


def test_list_shows_every_entry_on_one_line_and_errors_below(tmp_path, server, capsys) -> None:
    server.routes["/f/export"] = Route(body=zipped(api_orders(), 480))
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    did = create_and_complete(chain, client, clock, server.url("/f/export"))
    chain.retrieve(did)
    client.create_error = make_error("OutcomeUnknown", "read timeout after send")
    with pytest.raises(ExportRequestUnknown) as unknown:
        chain.request(USDM, date(2024, 1, 1), date(2024, 3, 31))

    assert main(["exports", "--data-dir", str(tmp_path), "list"], Settings(data_dir=tmp_path / "elsewhere")) == 0

    lines = capsys.readouterr().out.splitlines()
    assert [c.strip() for c in lines[0].split("|")] == [
        "id",
        "account",
        "market",
        "range",
        "status",
        "download id",
        "link expires",
        "file",
    ]
    retrieved = chain.ledger.by_download_id(did)
    row = next(line for line in lines if f" {did} " in f" {line} ")
    cells = [c.strip() for c in row.split("|")]
    assert cells[0] == str(retrieved.id) and cells[2:5] == ["usdm", retrieved.range_text, "retrieved"]
    assert cells[6].endswith("UTC") and cells[7] == f"raw/usdm/{did}.zip"
    assert lines[-2] == "(2 rows)"
    assert lines[-1].startswith(f"#{unknown.value.entry_id}: ")  # the unknown entry's message, under the table
    assert main(["exports", "--data-dir", str(tmp_path), "list", "--status", "unknown"], Settings()) == 0
    assert "(1 row)" in capsys.readouterr().out

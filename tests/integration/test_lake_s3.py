"""The lake on object storage (ORDERLAKE_LAKE_URL=s3://…) against the loopback S3 server of deploy/services.sh: the
same partitions, listings and catalog views as the local lake, nothing written to the local lake, a partition
visible only once its object is complete, and no credential in warehouse.duckdb, the lake or the data dir."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from assets.cli import main
from pipeline.settings import Settings
from pipeline.storage import lake, lakefs, s3log
from pipeline.times import now_ms as wall_now_ms
from pipeline.warehouse import object_snapshots
from pipeline.warehouse.catalog import CATALOG_FILE, build_catalog
from pipeline.warehouse.object_snapshots import OBJECT_MANIFEST, gc_pins, pin_root
from pipeline.warehouse.snapshots import gc_snapshots
from tests.support.services import S3Service
from tests.support.warehouse import futures_row, make_table, spot_row, write

D1, D2, D3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)


def _fill(data: Path) -> None:
    write(data, "spot_orders", "main", D1, [spot_row(1, status="NEW", executed="0", quote="0"), spot_row(2)])
    write(data, "spot_orders", "main", D2, [spot_row(1, update="2024-01-02T08:00:00")])
    write(data, "spot_orders", "other", D2, [spot_row(7, account="other", time="2024-01-02T09:00:00")])
    write(data, "futures_orders", "main", D2, [futures_row(10, update="2024-01-02T00:00:00")])
    write(data, "spot_open_orders", "main", D3, [])


@pytest.fixture
def s3_data(tmp_path: Path, s3_service: S3Service):
    data = tmp_path / "s3-data"
    settings = Settings.from_env({**s3_service.env(), "ORDERLAKE_DATA_DIR": str(data)})
    where = lakefs.configure(settings)
    yield data, settings, where
    lakefs.configure(settings.replace(lake_url=None))


def test_partitions_round_trip_through_s3_and_nothing_lands_locally(s3_data) -> None:
    data, _, where = s3_data
    _fill(data)
    assert not (data / "lake").exists()
    assert lake.list_partitions(data, "spot_orders", "main") == [D1, D2]
    assert lake.list_accounts(data, "spot_orders") == ["main", "other"]
    assert lake.read_partition(data, "spot_orders", "main", D1).num_rows == 2
    assert lake.partition_exists(data, "spot_open_orders", "main", D3)  # an empty partition is a fetched day
    assert not lake.partition_exists(data, "spot_orders", "main", D3)
    assert lake.account_dataset(data, "spot_orders", "main").count_rows() == 3
    key = where.path("spot_orders", "account=main", "date=2024-01-01", "part-0.parquet")
    assert where.fs.get_file_info(key).type == pafs.FileType.File
    with pytest.raises(lake.PartitionMissing):
        lake.read_partition(data, "spot_orders", "main", D3)


def test_a_failed_write_leaves_the_published_object_as_it_was(s3_data, monkeypatch: pytest.MonkeyPatch) -> None:
    data, _, _ = s3_data
    write(data, "spot_orders", "main", D1, [spot_row(1)])

    def crash(table, fh) -> None:
        fh.write(b"PAR1 half a file")
        raise OSError("disk full while encoding")

    monkeypatch.setattr(lake, "_write_file", crash)
    with pytest.raises(OSError, match="disk full"):
        lake.write_partition(data, "spot_orders", "main", D1, make_table("spot_orders", [spot_row(1), spot_row(2)]))
    assert lake.read_partition(data, "spot_orders", "main", D1).num_rows == 1


def test_staged_partitions_publish_as_one_object(s3_data, tmp_path: Path) -> None:
    data, _, where = s3_data
    staging = tmp_path / "staging"
    staging.mkdir()
    rows = make_table("spot_orders", [spot_row(5, time="2024-01-02T01:00:00")])
    staged = lake.stage_partition(staging, "spot_orders", "main", D2, rows)
    result = lake.publish_partition(data, staged)
    assert result.path == f"s3://{where.root}/spot_orders/account=main/date=2024-01-02/part-0.parquet"
    assert not staged.path.exists()
    assert lake.read_partition(data, "spot_orders", "main", D2).column("order_id").to_pylist() == [5]


def _views(catalog: Path, connect) -> dict[str, list[tuple]]:
    con = connect(catalog)
    try:
        names = [r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()]
        out = {}
        for name in sorted(names):
            cols = [c for c in con.execute(f'SELECT * FROM "{name}" LIMIT 0').fetchdf().columns if c != "path"]
            select = ", ".join(f'"{c}"' for c in cols)
            out[name] = sorted(map(repr, con.execute(f'SELECT {select} FROM "{name}"').fetchall()))
        return out
    finally:
        con.close()


def test_catalog_over_s3_equals_the_local_one_and_holds_no_credential(s3_data, tmp_path: Path, capsys) -> None:
    data, settings, where = s3_data
    local = tmp_path / "local-data"
    _fill(data)
    _fill(local)
    remote_result, local_result = build_catalog(data), build_catalog(local)
    assert remote_result.files == local_result.files
    assert remote_result.views == local_result.views
    assert remote_result.views["spot_orders"] == 3
    assert _views(data / CATALOG_FILE, lakefs.connect_catalog) == _views(local / CATALOG_FILE, lakefs.connect_catalog)
    manifest = (remote_result.snapshot / "objects.json").read_text()
    assert '"etag"' in manifest and "date=2024-01-02" in manifest
    # canary: no credential in the catalog file, the data dir or the lake's objects
    secrets = [settings.aws_secret_access_key.reveal(), settings.aws_access_key_id.reveal()]
    blobs = [p.read_bytes() for p in data.rglob("*") if p.is_file()]
    for info in where.files(where.root):
        with where.fs.open_input_stream(info.path) as fh:
            blobs.append(fh.read())
    assert (data / CATALOG_FILE).read_bytes() in blobs
    assert not [s for s in secrets for blob in blobs if s.encode() in blob]
    # the catalog alone cannot read the lake: a session needs the credentials
    import duckdb

    offline = {"autoinstall_known_extensions": False}  # no httpfs, no secret (with httpfs: test_duckdb_s3.py)
    with duckdb.connect(str(data / CATALOG_FILE), read_only=True, config=offline) as bare, pytest.raises(duckdb.Error):
        bare.execute("SELECT count(*) FROM spot_orders").fetchall()
    # orderlake sql gives them to its own session
    assert main(["sql", "SELECT count(*) AS n FROM spot_orders"], settings) == 0
    assert "3" in capsys.readouterr().out


def test_status_reads_coverage_from_the_object_listing(s3_data) -> None:
    from pipeline.warehouse.status import scan_lake

    data, _, _ = s3_data
    _fill(data)
    coverage = {(c.table, c.account): c.days for c in scan_lake(data, None, None)}
    assert coverage[("spot_orders", "main")] == {D1: 2, D2: 1}
    assert coverage[("spot_orders", "other")] == {D2: 1}
    assert coverage[("spot_open_orders", "main")] == {D3: 0}


def test_late_fetched_spot_days_are_found_in_both_lakes(s3_data, tmp_path: Path) -> None:
    """A day fetched long after Binance archived its zero-fill cancels is flagged, from footers and ingested_at."""
    from pipeline.warehouse.status import late_fetched_spot_days

    data, _, _ = s3_data
    for lake_dir in (data, tmp_path / "local-data"):
        write(lake_dir, "spot_orders", "main", D1, [spot_row(1, ingested="2024-01-02T00:00:00")])
        write(lake_dir, "spot_orders", "main", D2, [spot_row(2, time="2024-01-02T05:00:00", ingested="2024-09-01")])
        write(lake_dir, "spot_orders", "other", D2, [spot_row(3, account="other", time="2024-01-02T05:00:00")])
        assert late_fetched_spot_days(lake_dir, "main") == [D2], lake_dir
        assert late_fetched_spot_days(lake_dir, None) == [D2]


def test_the_s3_clients_logs_show_no_credential_even_at_debug(
    s3_data, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore (under s3fs) signs the catalog build's object listing; DuckDB reads through httpfs, whose own
    logging tests/integration/test_duckdb_s3.py checks."""
    data, settings, _ = s3_data
    write(data, "spot_orders", "main", D1, [spot_row(1)])
    caplog.set_level("DEBUG")
    build_catalog(data)
    # building the client kept its libraries above DEBUG although the root logger is at DEBUG
    assert all(logging.getLogger(n).getEffectiveLevel() >= logging.INFO for n in s3log.AWS_LOGGERS)
    built = lakefs.S3Access.fsspec

    def lowered_again(access: lakefs.S3Access):  # someone lowers them again: the records are still redacted
        client = built(access)
        for name in s3log.AWS_LOGGERS:
            caplog.set_level("DEBUG", logger=name)
        return client

    monkeypatch.setattr(lakefs.S3Access, "fsspec", lowered_again)
    build_catalog(data)
    signed = [r.getMessage() for r in caplog.records if "'Authorization'" in r.getMessage()]
    assert signed and all("Credential=<redacted>/" in m for m in signed)  # botocore logged each signed request
    for value in (settings.aws_access_key_id.reveal(), settings.aws_secret_access_key.reveal()):
        assert value not in caplog.text


def _spot_rows(data: Path) -> list[int]:
    con = lakefs.connect_catalog(data / CATALOG_FILE)
    try:
        return [r[0] for r in con.execute("SELECT order_id FROM spot_order_versions ORDER BY order_id").fetchall()]
    finally:
        con.close()


def test_a_catalog_reads_the_versions_its_build_listed_until_the_next_build(s3_data) -> None:
    """What hard links give a local lake: a day rewritten after the build is read as the build saw it, by any
    session, until the next build; then the older build's pinned copies go once their grace period is over."""
    data, _, where = s3_data
    write(data, "spot_orders", "main", D1, [spot_row(1), spot_row(2)])
    first = build_catalog(data)
    write(data, "spot_orders", "main", D1, [spot_row(3)])  # one PUT replaces the object under the same key
    assert _spot_rows(data) == [1, 2]
    con = lakefs.connect_catalog(data / CATALOG_FILE)
    paths = [r[0] for r in con.execute("SELECT path FROM lake_files").fetchall()]
    con.close()
    assert paths == [where.uri(where.path("spot_orders", "account=main", "date=2024-01-01", "part-0.parquet"))]

    second = build_catalog(data)
    assert _spot_rows(data) == [3]
    pins = {
        name: [e["pin"] for e in json.loads((result.snapshot / OBJECT_MANIFEST).read_text())["spot_orders"]]
        for name, result in (("first", first), ("second", second))
    }
    assert pins["first"] != pins["second"]
    stored = {i.path for i in where.files(pin_root(where, data))}
    assert stored == {*pins["first"], *pins["second"]}  # the first catalog's readers are within their grace period
    later = wall_now_ms() + 1000
    gc_snapshots(data, keep=second.snapshot, grace_seconds=0, now_ms=later)
    assert gc_pins(where, data, grace_seconds=0, now_ms=later) == pins["first"]
    assert {i.path for i in where.files(pin_root(where, data))} == set(pins["second"])
    assert _spot_rows(data) == [3]


def test_an_object_rewritten_while_it_is_pinned_is_pinned_whole(s3_data, monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy is conditional on the listed ETag: a rewrite between the listing and the copy gives the newer
    version (listed again), never a pin whose name and content disagree."""
    data, _, where = s3_data
    write(data, "spot_orders", "main", D1, [spot_row(1)])
    listing = object_snapshots._Pinner.pin

    def rewritten_first(self, at, key, etag):
        if not getattr(self, "done", False):
            self.done = True
            write(data, "spot_orders", "main", D1, [spot_row(2)])
        return listing(self, at, key, etag)

    monkeypatch.setattr(object_snapshots._Pinner, "pin", rewritten_first)
    result = build_catalog(data)
    (entry,) = json.loads((result.snapshot / OBJECT_MANIFEST).read_text())["spot_orders"]
    assert entry["etag"] == where.s3.fsspec().info(entry["key"])["ETag"].strip('"') != ""
    assert entry["etag"] in entry["pin"]
    assert _spot_rows(data) == [2]

"""DuckDB over a lake on the loopback S3 server: the views name ``s3://`` objects that any DuckDB session with httpfs
and a secret of its own can read, a session without one cannot, and neither the catalog file, DuckDB's secret
directory, its logs nor its profile output ever holds the credentials."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.settings import Settings
from pipeline.storage import duckdb_s3, lakefs
from pipeline.warehouse.catalog import CATALOG_FILE, build_catalog
from tests.integration.test_lake_s3 import _fill
from tests.support.services import S3Service
from tests.support.warehouse import make_table, spot_row, write
from tests.unit.test_warehouse_compaction import reads


@pytest.fixture
def catalog(tmp_path: Path, s3_service: S3Service):
    data = tmp_path / "s3-data"
    settings = Settings.from_env({**s3_service.env(), "ORDERLAKE_DATA_DIR": str(data)})
    lakefs.configure(settings)
    try:
        _fill(data)
        build_catalog(data)
        yield data / CATALOG_FILE, settings, s3_service
    finally:
        lakefs.configure(settings.replace(lake_url=None))


def _credentials(settings: Settings) -> list[bytes]:
    return [s.reveal().encode() for s in (settings.aws_access_key_id, settings.aws_secret_access_key)]


def test_the_views_read_s3_urls_with_any_sessions_own_secret(catalog) -> None:
    """What a BI user does: load httpfs, create a secret of their own, query; no orderlake code involved."""
    path, _, s3 = catalog
    with duckdb.connect(str(path), read_only=True) as con:
        sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'lake_files'").fetchone()[0]
        assert f"'{s3.lake_url}/_orderlake/catalog-pins/" in sql  # the build's pinned copies (object_snapshots.py)
        assert "/spot_orders/account=main/date=2024-01-01/" in sql
        con.execute(f"LOAD '{duckdb_s3.extension_path('httpfs').as_posix()}'")
        endpoint = s3.endpoint.removeprefix("http://")
        con.execute(
            f"CREATE SECRET bi (TYPE s3, KEY_ID '{s3.key}', SECRET '{s3.secret}', ENDPOINT '{endpoint}', "
            "URL_STYLE 'path', USE_SSL false)"
        )
        assert con.execute("SELECT count(*) FROM spot_orders").fetchone() == (3,)
        assert con.execute("SELECT sum(rows) FROM lake_files").fetchone() == (5,)


def test_a_session_without_httpfs_or_without_a_secret_cannot_read(catalog) -> None:
    path, _, s3 = catalog
    offline = {"autoinstall_known_extensions": False}  # DuckDB would try its extension repository
    with duckdb.connect(str(path), read_only=True, config=offline) as con, pytest.raises(duckdb.Error, match="httpfs"):
        con.execute("SELECT count(*) FROM spot_orders").fetchall()
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute(f"LOAD '{duckdb_s3.extension_path('httpfs').as_posix()}'")
        endpoint = s3.endpoint.removeprefix("http://")
        con.execute(f"CREATE SECRET anonymous (TYPE s3, ENDPOINT '{endpoint}', URL_STYLE 'path', USE_SSL false)")
        with pytest.raises(duckdb.Error, match="403"):
            con.execute("SELECT count(*) FROM spot_orders").fetchall()


def test_without_keys_the_session_takes_them_from_the_aws_sdks_chain(
    catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An instance role, SSO or a profile: no AWS_* keys in Settings, the aws extension's credential chain."""
    path, settings, s3 = catalog
    profile = tmp_path / "aws-credentials"
    profile.write_text(f"[default]\naws_access_key_id = {s3.key}\naws_secret_access_key = {s3.secret}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(profile))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    lakefs.configure(settings.replace(aws_access_key_id=None, aws_secret_access_key=None))
    con = lakefs.connect_catalog(path)
    try:
        assert con.execute("SELECT provider FROM duckdb_secrets()").fetchall() == [("credential_chain",)]
        assert con.execute("SELECT count(*) FROM spot_orders").fetchall() == [(3,)]
    finally:
        con.close()
    profile.write_text("[default]\naws_access_key_id = someone-else\naws_secret_access_key = wrong\n")
    con = lakefs.connect_catalog(path)  # the chain's credentials are the ones that sign: wrong ones are refused
    try:
        with pytest.raises(duckdb.Error, match="403"):
            con.execute("SELECT count(*) FROM spot_orders").fetchall()
    finally:
        con.close()


def test_no_credential_in_the_catalog_secret_dir_logs_or_profile(catalog, tmp_path: Path) -> None:
    path, settings, _ = catalog
    profile = tmp_path / "profile.json"
    con = lakefs.connect_catalog(path)
    try:
        secrets = con.execute("SELECT persistent, storage FROM duckdb_secrets()").fetchall()
        assert secrets == [(False, "memory")]  # TEMPORARY: never in the secret directory, never in the file
        secret_dir = Path(con.execute("SELECT current_setting('secret_directory')").fetchone()[0])
        # someone switches DuckDB's own logging and profiling on for this session
        con.execute("CALL enable_logging(level = 'trace')")
        con.execute("PRAGMA enable_profiling = 'json'")
        con.execute(f"PRAGMA profiling_output = '{profile.as_posix()}'")
        assert con.execute("SELECT count(*) FROM spot_orders").fetchall() == [(3,)]  # a whole result: profiled
        con.execute("PRAGMA disable_profiling")
        logged = con.execute("SELECT type, message FROM duckdb_logs()").fetchall()
    finally:
        con.close()
    key_id, secret = _credentials(settings)
    signed = [m for t, m in logged if t == "HTTP" and "Authorization" in m]
    assert signed and all("Credential=" in m for m in signed)  # the signed requests were logged
    assert not [m for _, m in logged if secret.decode() in m]  # the signature only: never the secret
    # the access key id is in each logged Authorization header (as in botocore's); nowhere else
    assert not [m for t, m in logged if t != "HTTP" and key_id.decode() in m]
    files = [path, profile, *(p for p in secret_dir.rglob("*") if p.is_file())]
    assert json.loads(profile.read_text())  # the profile was written
    assert not [(f, c) for f in files for c in (key_id, secret) if c in f.read_bytes()]


def test_objects_merge_by_name_only_where_their_schemas_differ(catalog) -> None:
    """Alike objects: a view reads one footer to bind, and a one-day query opens that day's objects only."""
    path, _, _ = catalog
    data, where = path.parent, lakefs.location(path.parent)
    for day in (5, 6, 7):
        write(data, "spot_orders", "main", date(2024, 1, day), [spot_row(day, time=f"2024-01-0{day}T10:00:00")])
    build_catalog(data)

    def union_flags() -> list[tuple[str, str]]:
        with duckdb.connect(str(path), read_only=True) as con:
            sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'spot_order_versions'").fetchone()[0]
            return reads(sql)

    assert union_flags() == [("true", "false")]
    con = lakefs.connect_catalog(path)
    try:
        con.execute("CALL enable_logging('HTTP')")
        one_day = "SELECT count(*) FROM spot_order_versions WHERE date = DATE '2024-01-06'"
        assert con.execute(one_day).fetchall() == [(1,)]
        logged = con.execute("SELECT message FROM duckdb_logs() WHERE type = 'HTTP'").fetchall()
    finally:
        con.close()
    opened = {re.search(r"date(?:=|%3D)([0-9-]{10})/", m).group(1) for (m,) in logged}
    assert opened == {"2024-01-01", "2024-01-06"}  # the first object's footer binds the view; 4 of 6 unopened
    extra = make_table("spot_orders", [spot_row(9, time="2024-01-04T10:00:00")], extra={"brand_new": pa.string()})
    key = where.path("spot_orders", "account=main", "date=2024-01-04", "part-0.parquet")
    with where.fs.open_output_stream(key) as out:
        pq.write_table(extra, out)
    build_catalog(data)
    assert union_flags() == [("true", "true")]
    con = lakefs.connect_catalog(path)
    try:
        assert "brand_new" in [c[0] for c in con.execute("DESCRIBE spot_order_versions").fetchall()]
        assert con.execute("SELECT count(*) FROM spot_order_versions").fetchall() == [(8,)]
    finally:
        con.close()

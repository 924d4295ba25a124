"""The S3 secret a DuckDB session gets for a lake on object storage: its options per endpoint, credentials only as
statement parameters, TEMPORARY and in memory, and clear errors when the httpfs package is missing or mismatched."""

from __future__ import annotations

import sys

import duckdb
import pytest

from pipeline.errors import ConfigurationError
from pipeline.settings import Secret
from pipeline.storage import duckdb_s3
from pipeline.storage.lakefs import S3Access

KEY, SECRET, TOKEN = "AKIAUNITDUCKDB01", "unit-duckdb-secret/+=", "FwoGZXIvYXdzUnitDuckToken=="
SCOPE = "s3://bucket/prefix/lake"


def _options(access: S3Access) -> dict[str, object]:
    sql, values = duckdb_s3.secret_options(access, SCOPE)
    names = [part.split()[0] for part in sql.split(", ")]
    assert all(part.endswith(" ?") for part in sql.split(", ")), sql  # every value is a parameter
    return dict(zip(names, values, strict=True))


def test_a_compatible_server_gets_its_endpoint_path_style_and_ssl_from_the_scheme() -> None:
    plain = S3Access("http://127.0.0.1:9000", "eu-west-1", Secret(KEY), Secret(SECRET), Secret(TOKEN))
    assert _options(plain) == {
        "REGION": "eu-west-1",
        "SCOPE": SCOPE,
        "ENDPOINT": "127.0.0.1:9000",
        "URL_STYLE": "path",
        "USE_SSL": False,
        "KEY_ID": KEY,
        "SECRET": SECRET,
        "SESSION_TOKEN": TOKEN,
    }
    tls = _options(S3Access("https://minio.internal:9443/s3/", key=Secret(KEY), secret=Secret(SECRET)))
    assert (tls["ENDPOINT"], tls["USE_SSL"], "SESSION_TOKEN" in tls) == ("minio.internal:9443/s3", True, False)


def test_aws_itself_keeps_duckdbs_defaults_and_without_keys_the_sdks_chain_finds_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # the chain's last resort would ask the network
    chain = {"PROVIDER": "credential_chain", "VALIDATION": "none"}
    assert _options(S3Access()) == {"REGION": "us-east-1", "SCOPE": SCOPE, **chain}
    con = duckdb.connect()
    try:
        duckdb_s3.attach(con, S3Access(region="eu-central-1"), SCOPE)  # loads the aws extension for the chain
        rows = con.execute("SELECT provider, persistent FROM duckdb_secrets()").fetchall()
        assert rows == [("credential_chain", False)]
    finally:
        con.close()


def test_the_secret_is_temporary_in_memory_and_its_statement_holds_no_value() -> None:
    con = duckdb.connect()
    try:
        con.execute("CALL enable_logging(level = 'trace')")  # DuckDB's own query log, off unless someone enables it
        duckdb_s3.attach(con, S3Access("http://127.0.0.1:9", key=Secret(KEY), secret=Secret(SECRET)), SCOPE)
        rows = con.execute("SELECT name, type, persistent, storage, scope, secret_string FROM duckdb_secrets()")
        ((name, kind, persistent, storage, scope, shown),) = rows.fetchall()
        assert (name, kind, persistent, storage, scope) == (duckdb_s3.SECRET_NAME, "s3", False, "memory", [SCOPE])
        assert "endpoint=127.0.0.1:9" in shown and "use_ssl=false" in shown and SECRET not in shown
        logged = [r[0] for r in con.execute("SELECT message FROM duckdb_logs() WHERE type = 'QueryLog'").fetchall()]
        assert any("CREATE OR REPLACE TEMPORARY SECRET" in m for m in logged)
        assert not [m for m in logged if KEY in m or SECRET in m]
    finally:
        con.close()


def test_a_missing_or_mismatched_httpfs_package_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    assert duckdb_s3.extension_path("httpfs").name == "httpfs.duckdb_extension"
    monkeypatch.setattr(duckdb, "__version__", "0.0.1")
    with pytest.raises(ConfigurationError, match=r"no httpfs extension for DuckDB 0\.0\.1.*orderlake\[scale\]"):
        duckdb_s3.extension_path("httpfs")
    monkeypatch.setitem(sys.modules, "duckdb_extension_httpfs", None)  # not installed
    with pytest.raises(ConfigurationError, match=r"`scale` extra.*duckdb-extension-httpfs"):
        duckdb_s3.extension_path("httpfs")

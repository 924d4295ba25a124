"""DuckDB sessions that read a lake on object storage: the ``httpfs`` extension and a TEMPORARY S3 secret.

The extension comes from PyPI's ``duckdb-extension-httpfs`` (the ``scale`` extra; DuckDB's own repository is not
reachable where orderlake is installed), loaded from the package's file, which DuckDB accepts as signed; without
``AWS_*`` keys, ``duckdb-extension-aws`` adds the AWS SDK's credential chain. The secret lives in the session's
memory: no persistent secret, nothing in ``warehouse.duckdb``, and the credentials travel as statement parameters,
so not even DuckDB's query log (off by default) sees them. The session caches each object's HEAD (size, ETag),
which a catalog build would otherwise repeat for every query that opens it.
Design: docs/design/scale.md §DuckDB reads the lake through httpfs.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pipeline.errors import ConfigurationError

if TYPE_CHECKING:
    from pipeline.storage.lakefs import S3Access

SECRET_NAME = "orderlake_lake"


def extension_path(name: str) -> Path:
    """The ``<name>.duckdb_extension`` file of PyPI's ``duckdb-extension-<name>`` built for the running DuckDB (pip
    pins the two to one version)."""
    import duckdb

    version, package = duckdb.__version__, f"duckdb-extension-{name}"
    try:
        module = importlib.import_module(f"duckdb_extension_{name}")
    except ImportError:
        raise ConfigurationError(
            f"ORDERLAKE_LAKE_URL=s3://… needs DuckDB's {name} extension to query the lake: install orderlake with the "
            f"`scale` extra (pip install 'orderlake[scale]'), which brings the PyPI package {package}"
        ) from None
    path = Path(module.__file__ or "").parent / "extensions" / f"v{version}" / f"{name}.duckdb_extension"
    if not path.is_file():
        raise ConfigurationError(
            f"{package} has no {name} extension for DuckDB {version} (looked for {path}): reinstall both with pip "
            f"(pip install 'orderlake[scale]'), which pairs the extension with its DuckDB release"
        )
    return path


def secret_options(access: S3Access, scope: str) -> tuple[str, list[str | bool]]:
    """The ``CREATE SECRET`` option list with ``?`` placeholders, and their values (never inlined in the SQL)."""
    options: list[tuple[str, str | bool]] = [("REGION", access.region), ("SCOPE", scope)]
    if access.endpoint:  # an S3-compatible server (MinIO, SeaweedFS, Ceph): host[:port][/path], path-style URLs
        parts = urlsplit(access.endpoint)
        options += [("ENDPOINT", parts.netloc + parts.path.rstrip("/")), ("URL_STYLE", "path")]
        options.append(("USE_SSL", parts.scheme != "http"))
    if access.key is None:  # no AWS_* keys: the AWS SDK's chain (profile files, SSO, instance or task role)
        options += [("PROVIDER", "credential_chain"), ("VALIDATION", "none")]  # none found yet: created all the same
    for name, value in (("KEY_ID", access.key), ("SECRET", access.secret), ("SESSION_TOKEN", access.token)):
        if value is not None:
            options.append((name, value.reveal()))
    sql = ", ".join(f"{name} ?" for name, _ in options)
    return sql, [value for _, value in options]


def attach(con: Any, access: S3Access, scope: str) -> None:
    """Load httpfs into ``con`` and give it a TEMPORARY secret for ``scope`` (``s3://bucket/prefix``)."""
    for name in ("httpfs",) if access.key else ("httpfs", "aws"):  # aws: the credential chain
        path = extension_path(name).as_posix().replace("'", "''")
        con.execute(f"LOAD '{path}'")
    options, values = secret_options(access, scope)
    con.execute(f"CREATE OR REPLACE TEMPORARY SECRET {SECRET_NAME} (TYPE s3, {options})", values)
    # one HEAD per object for the life of this database instance, not one each time a query opens it again
    con.execute("SET enable_http_metadata_cache = true")

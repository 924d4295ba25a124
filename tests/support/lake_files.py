"""A data dir's lake files wherever the lake lives (``<data_dir>/lake`` or an S3 prefix, pipeline.storage.lakefs),
for tests that look at the files themselves: under ``make test-scaled`` every lake is on the loopback S3 server
(tests/support/scaled.py), and these helpers read it there, so the same assertions hold in both runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from pipeline.storage import lakefs


def lake_paths(data_dir: str | os.PathLike[str], *under: str) -> list[str]:
    """Every file of a table below ``lake/<under…>``, by its path from the lake root
    (``table/account=…/date=…/part-0…``); the lake's own records (``_orderlake/``, e.g. the identity) are no
    table's."""
    where = lakefs.location(data_dir)
    start = len(where.root) + 1
    paths = (info.path[start:] for info in where.files(where.path(*under)))
    return sorted(p for p in paths if not p.startswith("_orderlake/"))


def lake_files(data_dir: str | os.PathLike[str], *under: str) -> dict[str, bytes]:
    """:func:`lake_paths` with each file's bytes."""
    where = lakefs.location(data_dir)
    out: dict[str, bytes] = {}
    for path in lake_paths(data_dir, *under):
        with where.fs.open_input_stream(where.path(path)) as fh:
            out[path] = fh.read()
    return out


def lake_glob(data_dir: str | os.PathLike[str], table: str) -> str:
    """What DuckDB's ``read_parquet`` reads for every partition of ``table`` (use with :func:`lake_duckdb`)."""
    return lakefs.location(data_dir).uri(lakefs.location(data_dir).path(table, "**", "*.parquet"))


@contextmanager
def lake_duckdb(data_dir: str | os.PathLike[str]) -> Iterator[Any]:
    """An in-memory DuckDB connection that can read the data dir's lake (on S3: through the project's setup)."""
    with duckdb.connect() as con:
        lakefs.location(data_dir).register(con)
        yield con


def stored_bytes(data_dir: str | os.PathLike[str]) -> list[bytes]:
    """Every file in the data dir, and every object of its lake when that lives elsewhere: what a grep for a
    secret must cover."""
    blobs = [p.read_bytes() for p in Path(data_dir).rglob("*") if p.is_file()]
    if not lakefs.location(data_dir).is_local:
        blobs += lake_files(data_dir).values()
    return blobs


def remove_lake(data_dir: str | os.PathLike[str]) -> None:
    """Delete every partition of the data dir's lake (``rm -r lake``, or every object below the S3 prefix)."""
    where = lakefs.location(data_dir)
    where.fs.delete_dir(where.root)


def lake_environment(data_dir: str | os.PathLike[str]) -> dict[str, str]:
    """The variables that give a child process the data dir's lake (``Settings.from_env`` reads them; none for a
    local lake): a lake the test bound in this process alone would not reach the child otherwise."""
    where = lakefs.location(data_dir)
    if where.s3 is None:
        return {}
    access = where.s3
    named = {
        "ORDERLAKE_LAKE_URL": where.url,
        "AWS_ENDPOINT_URL": access.endpoint,
        "AWS_REGION": access.region,
        "AWS_ACCESS_KEY_ID": access.key,
        "AWS_SECRET_ACCESS_KEY": access.secret,
        "AWS_SESSION_TOKEN": access.token,
    }
    return {k: v if isinstance(v, str) else v.reveal() for k, v in named.items() if v is not None}

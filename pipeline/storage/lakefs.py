"""Where the lake lives: ``$ORDERLAKE_DATA_DIR/lake`` (default) or an S3 prefix (``ORDERLAKE_LAKE_URL=s3://…``).

A :class:`LakeLocation` is a ``pyarrow.fs`` filesystem and a root in it. The writer, readers and catalog ask
:func:`location` for a data dir's location; :func:`configure` binds one from the Settings (CLI, Dagster resources)
and unbound data dirs keep their local lake. On S3 a partition becomes visible with the single PUT of its object
(never a rename), and DuckDB reads the objects through its ``httpfs`` extension with a temporary secret per
connection (:mod:`pipeline.storage.duckdb_s3`), so no credential is ever written into ``warehouse.duckdb``. Design:
docs/design/scale.md §The lake on object storage.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from pipeline.errors import ConfigurationError
from pipeline.settings import Secret, Settings
from pipeline.storage import duckdb_s3, s3log

LAKE_DIR = "lake"
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class S3Access:
    """Endpoint, region and credentials of an S3-compatible store (the ``AWS_*`` settings)."""

    endpoint: str | None = None
    region: str = DEFAULT_REGION
    key: Secret | None = None
    secret: Secret | None = None
    token: Secret | None = None

    def __repr__(self) -> str:  # never the credentials
        return f"S3Access(endpoint={self.endpoint!r}, region={self.region!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Access:
        return cls(
            settings.aws_endpoint_url,
            settings.aws_region or DEFAULT_REGION,
            settings.aws_access_key_id,
            settings.aws_secret_access_key,
            settings.aws_session_token,
        )

    def _reveal(self, value: Secret | None) -> str | None:
        return value.reveal() if value else None

    def _protect(self) -> None:
        """Before any client exists: its libraries' logs never show these credentials (s3log)."""
        s3log.protect(self._reveal(self.key), self._reveal(self.secret), self._reveal(self.token))

    def arrow(self) -> pafs.S3FileSystem:
        self._protect()
        kw: dict[str, Any] = {"region": self.region}
        if self.endpoint:
            parts = urlsplit(self.endpoint)
            kw.update(endpoint_override=parts.netloc + parts.path, scheme=parts.scheme)
        if self.key:
            kw.update(
                access_key=self._reveal(self.key),
                secret_key=self._reveal(self.secret),
                session_token=self._reveal(self.token),
            )
        return pafs.S3FileSystem(**kw)

    def fsspec(self) -> Any:
        """The same store as an fsspec filesystem (``scale`` extra): its listings carry each object's ETag, which
        the catalog's snapshot manifest records and Arrow's listing does not return."""
        try:
            import s3fs
        except ImportError:
            raise ConfigurationError(
                "ORDERLAKE_LAKE_URL=s3://… needs the Python package s3fs to list the lake; install orderlake with the "
                "`scale` extra (pip install 'orderlake[scale]')"
            ) from None
        self._protect()
        return s3fs.S3FileSystem(
            key=self._reveal(self.key),
            secret=self._reveal(self.secret),
            token=self._reveal(self.token),
            endpoint_url=self.endpoint,
            client_kwargs={"region_name": self.region},
            skip_instance_cache=True,
            use_listings_cache=False,
        )


@dataclass(frozen=True)
class LakeLocation:
    """A lake root: ``fs`` paths are ``root/<table>/account=…/date=…/part-0.parquet``."""

    fs: pafs.FileSystem
    root: str
    s3: S3Access | None = None

    @property
    def is_local(self) -> bool:
        return self.s3 is None

    @property
    def url(self) -> str:
        return self.root if self.is_local else f"s3://{self.root}"

    def path(self, *parts: str) -> str:
        """A path inside the lake for ``fs``."""
        return "/".join((self.root, *parts))

    def uri(self, fs_path: str) -> str:
        """What DuckDB reads for an ``fs`` path: the local path itself, or ``s3://bucket/key``."""
        return fs_path if self.is_local else f"s3://{fs_path}"

    def is_file(self, fs_path: str) -> bool:
        return self.fs.get_file_info(fs_path).type == pafs.FileType.File

    def files(self, prefix: str) -> Iterator[pafs.FileInfo]:
        """Every object or file below ``prefix`` (recursive; nothing when it does not exist)."""
        selector = pafs.FileSelector(prefix, recursive=True, allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            if info.type == pafs.FileType.File:
                yield info

    def children(self, prefix: str) -> list[str]:
        """Names of the directories (common prefixes) directly below ``prefix``."""
        selector = pafs.FileSelector(prefix, recursive=False, allow_not_found=True)
        return sorted(i.base_name for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.Directory)

    def put_file(self, local: Path, fs_path: str) -> None:
        """Upload a finished local file as one object (memory-mapped, not read into memory)."""
        with pa.memory_map(str(local)) as src:
            self.put(src.read_buffer(), fs_path)

    def put(self, body: pa.Buffer, fs_path: str) -> None:
        """One object from complete bytes. S3 shows it only when its upload completes, and the body goes in ONE
        write call: no Python code (nor a KeyboardInterrupt) runs between the parts of a multipart upload, so an
        error cannot leave a completed partial object behind (Arrow completes an upload when its stream closes)."""
        out = self.fs.open_output_stream(fs_path)
        out.write(body)
        out.close()

    def register(self, con: Any) -> None:
        """Let a DuckDB connection read this lake (S3: httpfs and a secret held by this connection only)."""
        if self.s3 is not None:
            duckdb_s3.attach(con, self.s3, self.url)


def local(data_dir: str | os.PathLike[str]) -> LakeLocation:
    return LakeLocation(pafs.LocalFileSystem(), (Path(data_dir).resolve() / LAKE_DIR).as_posix())


def from_url(url: str, s3: S3Access | None = None) -> LakeLocation:
    """``s3://bucket/prefix``, with ``s3``'s endpoint and credentials."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigurationError(f"ORDERLAKE_LAKE_URL={url!r} is not an s3://bucket/prefix URL")
    access = s3 or S3Access()
    root = "/".join(p for p in (parts.netloc, parts.path.strip("/")) if p)
    return LakeLocation(access.arrow(), root, access)


_BOUND: dict[Path, LakeLocation] = {}
_LOCK = threading.Lock()


def bind(data_dir: str | os.PathLike[str], where: LakeLocation) -> LakeLocation:
    with _LOCK:
        _BOUND[Path(data_dir).resolve()] = where
    return where


def configure(settings: Settings, data_dir: str | os.PathLike[str] | None = None) -> LakeLocation:
    """Bind ``settings.lake_url`` to the data dir (``settings.data_dir`` unless given); unset: the local lake."""
    data_dir = settings.data_dir if data_dir is None else data_dir
    if not settings.lake_url:
        with _LOCK:
            _BOUND.pop(Path(data_dir).resolve(), None)
        return local(data_dir)
    return bind(data_dir, from_url(settings.lake_url, S3Access.from_settings(settings)))


def location(data_dir: str | os.PathLike[str]) -> LakeLocation:
    """The lake of ``data_dir``: the bound one, else ``<data_dir>/lake``."""
    with _LOCK:
        found = _BOUND.get(Path(data_dir).resolve())
    return found or local(data_dir)


def connect_catalog(catalog: str | os.PathLike[str]) -> Any:
    """A read-only DuckDB connection to a data dir's ``warehouse.duckdb`` that can read its lake."""
    import duckdb

    path = Path(catalog).resolve()
    con = duckdb.connect(str(path), read_only=True)
    location(path.parent).register(con)
    return con

"""Streaming download of a pre-signed export link into the immutable raw area.

The link is the credential: only ``https`` to hosts that resolve to public addresses (plain ``http`` only to an
allowed loopback host, the sandbox), no credentials in the URL, a fresh session with no auth and no credentials from
the environment, redirects checked hop by hop before connecting, the size and the total time bounded, and only
host + path ever logged (:func:`url_where`). Bytes stream to a temp file and are checked (Content-Length, SHA-256,
type) before the rename into place, so a failed download leaves nothing under ``raw/``. Design:
docs/design/exports.md §Retrieve.
"""

from __future__ import annotations

import email.message
import hashlib
import ipaddress
import logging
import os
import re
import socket
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit

import requests
import urllib3

from pipeline.errors import PermanentError
from pipeline.exports.errors import (
    BadDownload,
    DownloadError,
    DownloadTooLarge,
    DownloadUnavailable,
    TruncatedDownload,
    UnsafeDownloadUrl,
)
from pipeline.storage.atomic import publish, temp_path
from pipeline.storage.leftovers import owner_tag

log = logging.getLogger(__name__)

CHUNK = 1 << 20
SNIFF_BYTES = 4096
DEFAULT_MAX_DOWNLOAD_BYTES = 4 * 1024**3  # real exports reach hundreds of MB
DEFAULT_MAX_DOWNLOAD_SECONDS = 3600.0
# Addresses a pre-signed link never points to: RFC 6598 CGNAT is not "private" to the ipaddress module.
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
MAX_REDIRECTS = 5
USER_AGENT = "orderlake-export-download/1"


class _RedactQuery(logging.Filter):
    """urllib3 logs request lines at DEBUG ("GET /path?X-Amz-Signature=... HTTP/1.1"): drop the query part."""

    _query = re.compile(r"\?[^\s\"']*")

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "?" in text:
            record.msg, record.args = self._query.sub("?<redacted>", text), ()
        return True


_REDACT = _RedactQuery()
for _name in ("urllib3.connectionpool", "urllib3.connection", "requests"):
    if _REDACT not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_REDACT)


class LinkExpiredByServer(DownloadError, PermanentError):
    """The file server says the link is no longer valid (HTTP 403/410, S3 AccessDenied / Request has expired)."""


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    sha256: str
    ext: str
    name: str | None  # the name the server gave the file (Content-Disposition, else the URL path's last part)
    content_length: int | None = None  # what the server declared (the size matched it)


def served_name(resp: requests.Response) -> str | None:
    """The file's own name: it may carry the export's ``(UTC+8)`` label, lost when raw/ renames the file.

    Only ever parsed for that label and shown; never used as a path.
    """
    header = email.message.Message()
    header["content-disposition"] = resp.headers.get("Content-Disposition", "")
    name = header.get_filename() or unquote(PurePosixPath(urlsplit(resp.url or "").path).name)
    return name[:255] or None


def url_where(url: str) -> str:
    """Host + path of a URL, without the query (which holds the pre-signature) - safe for logs and messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{(':' + str(parts.port)) if parts.port else ''}{parts.path}"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _not_public(address: str) -> str | None:
    """Why an address is no public internet address, or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for why, hit in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("CGNAT", isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT),
        ("private or ULA", ip.is_private),
        ("multicast", ip.is_multicast),
        ("reserved or unspecified", ip.is_reserved or ip.is_unspecified),
    ):
        if hit:
            return why
    return None


def _resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (separate so tests can resolve names without DNS)."""
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
    except OSError as exc:
        raise DownloadUnavailable(f"export link host {host!r} does not resolve ({exc}); retry later") from None


def check_url(url: str, *, allow_http_loopback: bool) -> None:
    """Refuse, before connecting: anything but https to public addresses (and http to 127.0.0.0/8, ::1, localhost
    when allowed), and credentials in the URL."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    if not host:
        raise UnsafeDownloadUrl(
            f"export link has no host ({url_where(url)!r}); Binance returned an odd url. "
            "Re-poll the download id or inspect the link endpoint's answer."
        )
    if parts.username is not None or parts.password is not None:
        raise UnsafeDownloadUrl(
            f"refusing export link {url_where(url)}: it carries credentials (user:password@); a pre-signed link never "
            "does, so it is not followed."
        )
    if scheme == "https":
        if allow_http_loopback and _is_loopback(host):
            return
        for address in _resolve(host, parts.port or 443):
            why = _not_public(address)
            if why:
                raise UnsafeDownloadUrl(
                    f"refusing export link {url_where(url)}: {host} resolves to {address}, a {why} address; a "
                    "Binance link points to public addresses only. Only the sandbox may use loopback "
                    "(ORDERLAKE_ALLOW_HTTP_LOOPBACK=1)."
                )
        return
    if scheme == "http" and _is_loopback(host):
        if allow_http_loopback:
            return
        raise UnsafeDownloadUrl(
            f"refusing plain-http export link {url_where(url)}: http is only allowed to loopback when "
            "ORDERLAKE_ALLOW_HTTP_LOOPBACK=1 (sandbox use)."
        )
    raise UnsafeDownloadUrl(
        f"refusing export link {url_where(url)}: only https links are downloaded (the link is a pre-signed "
        "credential; plain http would expose it)."
    )


def normalise_url(url: str) -> str:
    """Binance's documented example is ``www.binance.com`` (no scheme): assume https for scheme-less links."""
    url = url.strip()
    return url if "://" in url else "https://" + url


def sniff(head: bytes, content_type: str = "") -> str:
    """Extension from the first bytes: zip / gz / csv; raises for HTML, error XML/JSON, binary noise."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gz"
    if not head:
        raise BadDownload("the export download returned an empty body (0 bytes) in place of the file")
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    low = text.lower()
    if low.startswith(("<?xml", "<error")):
        if "expired" in low or "accessdenied" in low:
            raise LinkExpiredByServer("the file server answered with an expired/AccessDenied XML error")
        code = re.search(r"<code>([^<]{0,80})</code>", text, re.IGNORECASE)
        raise BadDownload(
            "the export download returned an XML error document"
            f"{' (' + code.group(1) + ')' if code else ''} in place of the file"
        )
    if low.startswith(("<!doctype html", "<html")) or "text/html" in content_type.lower():
        raise BadDownload(
            "the export download returned an HTML page in place of the file (content-type "
            f"{content_type or '?'}; starts with {text[:40]!r}); a login/WAF/maintenance page is likely. "
            "Nothing was stored; retry later."
        )
    if low.startswith("{"):
        raise BadDownload(f"the export download returned JSON in place of the file: {text[:120]!r}")
    try:
        head[: max(len(head) - 4, 0)].decode("utf-8")  # allow a multibyte char cut at the sniff boundary
    except UnicodeDecodeError as exc:
        raise BadDownload(
            f"the export download is neither ZIP, gzip nor UTF-8 text (first bytes {head[:8]!r})"
        ) from exc
    return "csv"


def _open(
    session: requests.Session, url: str, *, allow_http_loopback: bool, timeout: tuple[float, float]
) -> requests.Response:
    """GET with manual redirects, each hop checked by :func:`check_url`."""
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url, allow_http_loopback=allow_http_loopback)
        proxies = {} if _is_loopback(urlsplit(url).hostname or "") else requests.utils.get_environ_proxies(url)
        try:
            resp = session.get(url, stream=True, timeout=timeout, allow_redirects=False, proxies=proxies)
        except requests.RequestException as exc:
            raise DownloadUnavailable(
                f"export download from {url_where(url)} failed: {type(exc).__name__}. "
                "Nothing was stored and no quota is spent; retry later."
            ) from None
        if resp.is_redirect and resp.headers.get("Location"):
            nxt = urljoin(url, resp.headers["Location"])
            resp.close()
            url = nxt
            continue
        return resp
    raise BadDownload(f"export download from {url_where(url)}: more than {MAX_REDIRECTS} redirects")


def _check_status(resp: requests.Response, where: str) -> None:
    if resp.status_code == 200:
        return
    if resp.status_code in (403, 410):
        body = resp.raw.read(SNIFF_BYTES, decode_content=True) or b""
        resp.close()
        hint = " (S3: Request has expired)" if b"expired" in body.lower() else ""
        raise LinkExpiredByServer(f"the file server answered HTTP {resp.status_code}{hint} for {where}")
    resp.close()
    raise DownloadUnavailable(
        f"export download from {where} answered HTTP {resp.status_code}. Nothing was stored "
        "and no quota is spent; retry later."
    )


def download(
    url: str,
    *,
    tmp_dir: Path,
    final_path: Callable[[str], Path],
    allow_http_loopback: bool,
    timeout: tuple[float, float] = (10.0, 60.0),
    chunk_size: int = CHUNK,
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    max_seconds: float = DEFAULT_MAX_DOWNLOAD_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> Downloaded:
    """Stream ``url`` to ``final_path(ext)`` via a temp file in ``tmp_dir``; verify length, hash, type; refuse a
    body above ``max_bytes`` and a transfer longer than ``max_seconds``."""
    url = normalise_url(url)
    where = url_where(url)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(tmp_dir, prefix=f".export-{owner_tag()}-", suffix=".part")
    started = clock()
    with requests.Session() as session:
        session.trust_env = False  # no ~/.netrc Authorization, no env-provided headers: the URL is the credential
        session.headers.clear()
        session.headers["User-Agent"] = USER_AGENT
        resp = _open(session, url, allow_http_loopback=allow_http_loopback, timeout=timeout)
        size, expected = 0, None
        try:
            _check_status(resp, where)
            log.info("downloading export file from %s", where)
            expected = resp.headers.get("Content-Length")
            if expected is not None and expected.isdigit() and int(expected) > max_bytes:
                raise DownloadTooLarge(
                    f"export download from {where} declares {int(expected):,} bytes, above the limit of {max_bytes:,} "
                    "(ORDERLAKE_EXPORT_MAX_DOWNLOAD_BYTES); nothing was stored. Raise the limit if the export is "
                    "genuinely that large."
                )
            ctype = resp.headers.get("Content-Type", "")
            name = served_name(resp)
            digest, ext, head = hashlib.sha256(), None, b""
            with open(tmp, "wb") as fh:
                # raw.stream(decode_content=False): store the bytes exactly as served (a Content-Encoding must not
                # be undone here) so Content-Length compares like for like and the raw copy is the real file.
                for chunk in resp.raw.stream(chunk_size, decode_content=False):
                    if not chunk:
                        continue
                    if ext is None:  # sniff once, as soon as enough bytes arrived (fail fast on HTML pages)
                        head += chunk
                        if len(head) >= SNIFF_BYTES:
                            ext = sniff(head, ctype)
                    fh.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if size > max_bytes:
                        raise DownloadTooLarge(
                            f"export download from {where} exceeds {max_bytes:,} bytes "
                            "(ORDERLAKE_EXPORT_MAX_DOWNLOAD_BYTES); nothing was stored. Raise the limit if the "
                            "export is genuinely that large."
                        )
                    if clock() - started > max_seconds:
                        raise DownloadUnavailable(
                            f"export download from {where} took longer than {max_seconds:.0f} s "
                            f"(ORDERLAKE_EXPORT_MAX_DOWNLOAD_SECONDS) after {size:,} bytes; nothing was stored, "
                            "retry (the link stays valid until its expiration time)."
                        )
                if ext is None:
                    ext = sniff(head, ctype)
                fh.flush()
                os.fsync(fh.fileno())
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            tmp.unlink(missing_ok=True)
            raise TruncatedDownload(
                f"export download from {where} is truncated: the transfer broke off after {size} bytes "
                f"(Content-Length {expected or '?'}; {type(exc).__name__}). Nothing was stored; retry (the link "
                "stays valid until its expiration time)."
            ) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            resp.close()
    try:
        _verify(tmp, size, expected, ext, where)
        dest = final_path(ext)
        publish(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    declared = int(expected) if expected is not None and expected.isdigit() else None
    return Downloaded(dest, size, digest.hexdigest(), ext, name, declared)


def _verify(tmp: Path, size: int, expected: str | None, ext: str, where: str) -> None:
    if expected is not None and expected.isdigit() and int(expected) != size:
        raise TruncatedDownload(
            f"export download from {where} is truncated: Content-Length {expected} bytes but {size} received. "
            "Nothing was stored; retry (the link stays valid until its expiration time)."
        )
    if ext == "zip" and not zipfile.is_zipfile(tmp):
        raise TruncatedDownload(
            f"export download from {where} is not a complete ZIP archive ({size} bytes); nothing was stored, retry."
        )


def sha256_file(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()

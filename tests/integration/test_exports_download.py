"""Retrieval: streaming to the immutable raw area, integrity checks, URL policy, expired links, secrets."""

from __future__ import annotations

import gzip
import hashlib
import logging
from datetime import date

import pytest

from pipeline.exports import download as download_module
from pipeline.exports.download import check_url, sniff
from pipeline.exports.errors import (
    BadDownload,
    DownloadTooLarge,
    DownloadUnavailable,
    LinkExpired,
    RawFileMismatch,
    TruncatedDownload,
    UnsafeDownloadUrl,
)
from tests.support.exports import (
    API_KEY,
    USDM,
    Clock,
    FakeClient,
    FileServer,
    Route,
    completed,
    create_and_complete,
    make_chain,
    zip_bytes,
)

EXPIRED_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message><Expires>2025-03-01T00:00:00Z</Expires></Error>"
)


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


def _raw_files(tmp_path):
    return sorted(p.name for p in (tmp_path / "raw").rglob("*") if p.is_file())


def test_retrieve_streams_records_sha_and_reuses_raw_copy(tmp_path, server) -> None:
    body = zip_bytes()
    server.routes["/f/order.zip"] = Route(body=body, headers={"Content-Type": "application/octet-stream"})
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    did = create_and_complete(chain, client, clock, server.url("/f/order.zip"))
    assert [e.download_id for e in chain.pending_retrieval()] == [did]
    raw = chain.retrieve(did)
    assert raw.path == tmp_path / "raw" / "usdm" / f"{did}.zip" and not raw.reused
    assert raw.path.read_bytes() == body
    assert (raw.size, raw.sha256) == (len(body), hashlib.sha256(body).hexdigest())
    e = chain.ledger.by_download_id(did)
    assert (e.status, e.size, e.sha256, e.raw_path) == ("retrieved", raw.size, raw.sha256, f"raw/usdm/{did}.zip")
    assert e.url is None  # the pre-signed link is not kept once the file is safe
    assert list((tmp_path / "tmp").iterdir()) == []
    n = len(server.seen)
    again = make_chain(tmp_path, FakeClient(), clock).retrieve(did)  # e.g. a re-run after a parser fix
    assert again.reused and again.sha256 == raw.sha256 and len(server.seen) == n


def test_sniffing() -> None:
    assert sniff(b"PK\x03\x04rest") == "zip"
    assert sniff(gzip.compress(b"a,b\n")) == "gz"
    assert sniff("\ufeffUid,Time\r\n".encode()) == "csv"
    with pytest.raises(BadDownload, match="HTML"):
        sniff(b"<!DOCTYPE html><html>maintenance</html>")
    with pytest.raises(BadDownload, match="empty"):
        sniff(b"")
    with pytest.raises(BadDownload):
        sniff(b"\x00\xff\xfe\x01binary\xff\xfe\xfa\xfb\xfc\xfd")


@pytest.mark.parametrize(
    ("body", "ext"), [(gzip.compress(b"Uid,Time\n"), "gz"), (b"Uid,Time\r\n1,2\r\n", "csv")], ids=["gz", "csv"]
)
def test_extension_from_first_bytes(tmp_path, server, body, ext) -> None:
    server.routes["/f/x"] = Route(body=body)
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    did = create_and_complete(chain, client, clock, server.url("/f/x"))
    assert chain.retrieve(did).path.name == f"{did}.{ext}"


def test_truncated_download_keeps_no_raw_file(tmp_path, server) -> None:
    body = zip_bytes()
    server.routes["/f/t.zip"] = Route(body=body, content_length=len(body) + 1000)
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    did = create_and_complete(chain, client, clock, server.url("/f/t.zip"))
    with pytest.raises(TruncatedDownload, match="truncated: the transfer broke off"):
        chain.retrieve(did)
    assert _raw_files(tmp_path) == [] and list((tmp_path / "tmp").iterdir()) == []
    assert chain.ledger.by_download_id(did).status == "completed"  # still retrievable later
    server.routes["/f/t.zip"] = Route(body=body)
    assert chain.retrieve(did).size == len(body)


def test_html_instead_of_file_has_its_own_message(tmp_path, server) -> None:
    server.routes["/f/h"] = Route(
        body=b"<!doctype html><html><body>Access denied by WAF</body></html>", headers={"Content-Type": "text/html"}
    )
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    did = create_and_complete(chain, client, clock, server.url("/f/h"))
    with pytest.raises(BadDownload, match="HTML page"):
        chain.retrieve(did)
    assert _raw_files(tmp_path) == []


def test_https_only_and_loopback_http_needs_opt_in(monkeypatch) -> None:
    monkeypatch.setattr(download_module, "_resolve", lambda host, port: ["13.32.1.1"])  # no DNS in tests
    check_url("https://bin.bnbstatic.com/x.zip?sig=1", allow_http_loopback=False)
    for url in ("http://bin.bnbstatic.com/x.zip", "ftp://127.0.0.1/x", "http://10.0.0.1/x", "file:///etc/passwd"):
        with pytest.raises(UnsafeDownloadUrl):
            check_url(url, allow_http_loopback=True)
    for url in ("http://127.0.0.1:8/x", "http://127.8.9.1/x", "http://[::1]:9/x", "http://localhost/x"):
        with pytest.raises(UnsafeDownloadUrl, match="ORDERLAKE_ALLOW_HTTP_LOOPBACK"):
            check_url(url, allow_http_loopback=False)
        check_url(url, allow_http_loopback=True)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("10.1.2.3", "private"),
        ("192.168.0.7", "private"),
        ("127.0.0.2", "loopback"),
        ("169.254.169.254", "link-local"),
        ("100.64.3.4", "CGNAT"),
        ("fd12::1", "private or ULA"),
        ("::ffff:10.0.0.1", "private"),
        ("::1", "loopback"),
    ],
)
def test_https_to_a_non_public_address_is_refused_before_connecting(monkeypatch, address: str, why: str) -> None:
    monkeypatch.setattr(download_module, "_resolve", lambda host, port: ["13.32.1.1", address])
    with pytest.raises(UnsafeDownloadUrl, match=why):
        check_url("https://files.example/x.zip?sig=1", allow_http_loopback=False)


def test_credentials_in_the_url_and_oversized_or_slow_downloads(tmp_path, server, monkeypatch) -> None:
    monkeypatch.setattr(download_module, "_resolve", lambda host, port: ["13.32.1.1"])
    with pytest.raises(UnsafeDownloadUrl, match="credentials"):
        check_url("https://user:pw@files.example/x.zip", allow_http_loopback=False)
    body = zip_bytes()
    server.routes["/f/big.zip"] = Route(body=body)
    final = lambda ext: tmp_path / "raw" / f"x.{ext}"  # noqa: E731
    with pytest.raises(DownloadTooLarge, match="declares"):
        download_module.download(
            server.url("/f/big.zip"), tmp_dir=tmp_path / "tmp", final_path=final, allow_http_loopback=True, max_bytes=10
        )
    ticks = iter(range(0, 10_000, 100))
    with pytest.raises(DownloadUnavailable, match="took longer"):
        download_module.download(
            server.url("/f/big.zip"),
            tmp_dir=tmp_path / "tmp",
            final_path=final,
            allow_http_loopback=True,
            max_seconds=50,
            chunk_size=16,
            clock=lambda: next(ticks),
        )
    assert not (tmp_path / "raw").exists() and list((tmp_path / "tmp").iterdir()) == []


def test_http_loopback_refused_without_opt_in_makes_no_request(tmp_path, server) -> None:
    server.routes["/f/o.zip"] = Route(body=zip_bytes())
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock, allow_http_loopback=False)
    did = create_and_complete(chain, client, clock, server.url("/f/o.zip"))
    with pytest.raises(UnsafeDownloadUrl):
        chain.retrieve(did)
    assert server.seen == []
    assert make_chain(tmp_path, client, clock, allow_http_loopback=True).retrieve(did).size > 0


def test_expired_by_timestamp_repolls_and_uses_fresh_link(tmp_path, server) -> None:
    server.routes["/f/new.zip"] = Route(body=zip_bytes())
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    did = create_and_complete(chain, client, clock, server.url("/f/old.zip"), expires_in_s=600)
    clock.advance(3600)  # link expired before we got to it
    client.link_script[did] = [completed(did, server.url("/f/new.zip"), int((clock() + 86400) * 1000))]
    n_links = len(client.links)
    raw = chain.retrieve(did)
    assert len(client.links) == n_links + 1  # re-polled exactly once
    assert [s.path.split("?")[0] for s in server.seen] == ["/f/new.zip"]  # old link never tried
    assert chain.pending_retrieval() == []
    assert raw.size > 0 and chain.ledger.by_download_id(did).status == "retrieved"


def test_expired_by_timestamp_without_fresh_link_is_marked_expired(tmp_path, server) -> None:
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    old = server.url("/f/old.zip")
    did = create_and_complete(chain, client, clock, old, expires_in_s=600)
    clock.advance(3600)
    client.link_script[did] = [dict(completed(did, old, int((clock() - 3000) * 1000)), isExpired=True)]
    with pytest.raises(LinkExpired) as exc:
        chain.retrieve(did)
    msg = str(exc.value)
    assert did in msg and "new download id" in msg.lower() and "9 of 10 ids left" in msg
    assert server.seen == []
    e = chain.ledger.by_download_id(did)
    assert e.status == "expired" and e.url is None
    # the range is no longer blocked: it can be planned (and paid for) again
    assert [str(r) for r in chain.plan(USDM, date(2025, 1, 1), date(2025, 1, 31)).requests] == [
        "2025-01-01..2025-01-31"
    ]


def test_expired_by_server_403_xml_repolls_fresh_link(tmp_path, server) -> None:
    server.routes["/f/old.zip"] = Route(403, EXPIRED_XML, {"Content-Type": "application/xml"})
    server.routes["/f/new.zip"] = Route(body=zip_bytes())
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    did = create_and_complete(chain, client, clock, server.url("/f/old.zip"))
    client.link_script[did] = [completed(did, server.url("/f/new.zip"), int((clock() + 86400) * 1000))]
    assert chain.retrieve(did).size > 0
    assert [s.path.split("?")[0] for s in server.seen] == ["/f/old.zip", "/f/new.zip"]


def test_expired_by_server_same_link_is_marked_expired(tmp_path, server) -> None:
    server.routes["/f/old.zip"] = Route(403, EXPIRED_XML, {"Content-Type": "application/xml"})
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    url = server.url("/f/old.zip")
    did = create_and_complete(chain, client, clock, url)
    client.link_script[did] = [completed(did, url, int((clock() + 86400) * 1000))]
    with pytest.raises(LinkExpired, match=did):
        chain.retrieve(did)
    assert chain.ledger.by_download_id(did).status == "expired" and _raw_files(tmp_path) == []
    # a 200 answer carrying the S3 error document is detected too
    server.routes["/f/x"] = Route(200, EXPIRED_XML)
    clock.advance(60)
    did2 = create_and_complete(chain, client, clock, server.url("/f/x"))
    client.link_script[did2] = [completed(did2, server.url("/f/x"), int((clock() + 86400) * 1000))]
    with pytest.raises(LinkExpired):
        chain.retrieve(did2)


def test_no_secret_is_sent_to_the_download_url_or_logged(tmp_path, server, monkeypatch, caplog) -> None:
    # a ~/.netrc entry for the host would make a trust_env session attach Basic auth: it must be ignored
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text(f"machine 127.0.0.1 login me password {API_KEY}\n")
    (home / ".netrc").chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETRC", str(home / ".netrc"))
    server.routes["/f/o.zip"] = Route(body=zip_bytes())
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    caplog.set_level(logging.DEBUG)
    did = create_and_complete(chain, client, clock, server.url("/f/o.zip", "X-Amz-Signature=SIGN4TURE"))
    chain.retrieve(did)
    [req] = server.seen
    assert req.path == "/f/o.zip?X-Amz-Signature=SIGN4TURE"  # the pre-signed URL is used verbatim
    lowered = {k.lower(): v for k, v in req.headers.items()}
    assert "x-mbx-apikey" not in lowered and "authorization" not in lowered and "cookie" not in lowered
    assert all(API_KEY not in v for v in req.headers.values())
    assert "SIGN4TURE" not in caplog.text and "/f/o.zip" in caplog.text
    assert all("SIGN4TURE" not in str(ev["detail"]) for ev in chain.ledger.events())


def test_tampered_raw_file_is_refused_not_redownloaded(tmp_path, server) -> None:
    server.routes["/f/o.zip"] = Route(body=zip_bytes())
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    did = create_and_complete(chain, client, clock, server.url("/f/o.zip"))
    raw = chain.retrieve(did)
    raw.path.write_bytes(b"PK\x03\x04changed")
    with pytest.raises(RawFileMismatch, match=did):
        chain.retrieve(did)
    assert len(server.seen) == 1


def test_raw_file_renamed_before_a_crash_is_adopted_without_http(tmp_path, server) -> None:
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    did = create_and_complete(chain, client, clock, server.url("/f/never.zip"))
    body = zip_bytes()
    dest = tmp_path / "raw" / "usdm" / f"{did}.zip"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(body)
    raw = chain.retrieve(did)
    assert raw.reused and raw.sha256 == hashlib.sha256(body).hexdigest() and server.seen == []
    assert chain.ledger.by_download_id(did).sha256 == raw.sha256


def test_truncated_zip_without_content_length_is_refused(tmp_path, server) -> None:
    body = zip_bytes("x" * 50_000)
    server.routes["/f/z.zip"] = Route(body=body[:-40], no_length=True)
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    did = create_and_complete(chain, client, clock, server.url("/f/z.zip"))
    with pytest.raises(TruncatedDownload, match="not a complete ZIP"):
        chain.retrieve(did)
    assert _raw_files(tmp_path) == []


def test_fresh_link_rejected_too_is_expired_after_one_repoll(tmp_path, server) -> None:
    server.routes["/f/new.zip"] = Route(410, b"Gone")
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    did = create_and_complete(chain, client, clock, server.url("/f/old.zip"), expires_in_s=600)
    clock.advance(3600)
    client.link_script[did] = [completed(did, server.url("/f/new.zip"), int((clock() + 86400) * 1000))]
    n_links = len(client.links)
    with pytest.raises(LinkExpired, match="refreshed link was rejected too"):
        chain.retrieve(did)
    assert len(client.links) == n_links + 1 and len(server.seen) == 1
    assert chain.ledger.by_download_id(did).status == "expired"
    with pytest.raises(LinkExpired, match=r"(?i)new download id"):  # asking again says so, without any HTTP
        chain.retrieve(did)
    assert len(server.seen) == 1

"""Futures export chain of the sandbox: create -> processing -> completed -> ZIP -> expiry (403), quota, faults."""

from __future__ import annotations

import http.client
import io
import time
import zipfile
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests

from pipeline.sandbox.export_dialects import API_HEADER as HEADER
from pipeline.sandbox.testing import SignedClient, start_sandbox

DAY = 86_400_000
FAST = {
    "listed_symbols": 10,
    "active_symbols": 2,
    "history_days": 3,
    "busy_day_orders": 5,
    "futures_history_days": 60,
    "time_scale": 600.0,
    "export_processing_seconds": 300.0,
}  # scaled: processing 0.5 s; links live 24 h on the sandbox's clock, which only a test's advance moves


LAST_MINUTE_MS = 60_000


def _wait_completed(c, path, download_id, timeout=120.0):  # a ceiling for a hung sandbox, not a threshold
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        r = c.get(path, {"downloadId": download_id})
        assert r.status_code == 200, r.text
        info = r.json()
        seen.append(info["status"])
        if info["status"] == "completed":
            return info, seen
        assert info == {**info, "url": "", "expirationTimestamp": -1, "notified": False}
        time.sleep(0.1)
    raise AssertionError(f"not completed: {seen}")


def _local(ms: int, offset_min: int = 480) -> str:
    return (datetime.fromtimestamp(ms / 1000, tz=UTC) + timedelta(minutes=offset_min)).strftime("%Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize(
    ("market", "create", "link"),
    [
        ("usdm_orders", "/fapi/v1/order/asyn", "/fapi/v1/order/asyn/id"),
        ("pm_um_orders", "/papi/v1/um/order/asyn", "/papi/v1/um/order/asyn/id"),
    ],
)
def test_export_chain_happy_path_and_expiry(market, create, link):
    with start_sandbox(**FAST) as sx:
        c = SignedClient(sx.url)
        now = int(time.time() * 1000)
        start, end = now - 40 * DAY, now
        r = c.get(create, {"startTime": start, "endTime": end})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"avgCostTimestampOfLast30d", "downloadId"}
        assert isinstance(body["downloadId"], str) and len(body["downloadId"]) == 19
        info, seen = _wait_completed(c, link, body["downloadId"])
        assert seen[0] == "processing"
        url = info["url"] or info["s3Link"]
        if market == "pm_um_orders":
            assert info["url"] == "" and info["s3Link"].startswith("http://127.0.0.1")
        assert info["expirationTimestamp"] > now
        f = requests.get(url)
        assert f.status_code == 200
        assert int(f.headers["Content-Length"]) == len(f.content)
        zf = zipfile.ZipFile(io.BytesIO(f.content))
        (name,) = zf.namelist()
        assert name.startswith("Binance-Futures-Order-History-") and name.endswith("(UTC+8).csv")
        raw = zf.read(name)
        assert raw.startswith(b"\xef\xbb\xbf")
        text = raw[3:].decode("utf-8")
        assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
        lines = text.split("\r\n")[:-1]
        assert lines[0] == HEADER
        want = sorted(
            (o for o in sx.truth()[market] if start <= o["updateTime"] <= end),
            key=lambda o: (o["updateTime"], o["orderId"]),
        )
        assert len(lines) - 1 == len(want) > 0
        cols = lines[0].split(",")
        for line, o in zip(lines[1:], want, strict=True):
            row = dict(zip(cols, line.split(","), strict=True))
            assert row["Order No"] == str(o["orderId"]) and row["Symbol"] == o["symbol"]
            assert row["Time"] == _local(o["time"]) and row["Update Time"] == _local(o["updateTime"])
            assert (
                row["Price"],
                row["Average Price"],
                row["Amount"],
                row["Executed Amount"],
                row["Executed Quote Amount"],
                row["Stop Price"],
            ) == (o["price"], o["avgPrice"], o["origQty"], o["executedQty"], o["cumQuote"], o["stopPrice"])
            assert row["Activate Price"] == o.get("activatePrice", "")
        assert info["expirationTimestamp"] - now >= 24 * 3_600_000 and "X-Amz-Expires=86400&" in url
        # to a minute before expiry on the sandbox's wire clock (real time plus advances), however long this machine
        # took so far; the next two requests take far less than that minute even on a loaded machine
        sx.advance(ms=info["expirationTimestamp"] - sx.exchange.clock.wire() - LAST_MINUTE_MS)
        assert requests.get(url).status_code == 200
        wire = {"downloadId": body["downloadId"], "timestamp": sx.exchange.clock.wire()}  # signed on the moved clock
        assert c.get(link, wire).json()["isExpired"] is None
        sx.advance(ms=LAST_MINUTE_MS + 1)  # past it on the sandbox's clock: S3-style 403 XML
        gone = requests.get(url)
        assert gone.status_code == 403 and b"<Code>AccessDenied</Code>" in gone.content
        assert b"Request has expired" in gone.content
        wire["timestamp"] = sx.exchange.clock.wire()
        assert c.get(link, wire).json()["isExpired"] is True
        assert sx.stats()["export_ids_created"] == {market.removesuffix("_orders"): 1}


def test_empty_export_has_sentinel():
    with start_sandbox(**FAST) as sx:
        c = SignedClient(sx.url)
        start = int(time.time() * 1000) - 300 * DAY  # before the 60-day futures history
        did = c.get("/fapi/v1/order/asyn", {"startTime": start, "endTime": start + DAY}).json()["downloadId"]
        info, _ = _wait_completed(c, "/fapi/v1/order/asyn/id", did)
        zf = zipfile.ZipFile(io.BytesIO(requests.get(info["url"]).content))
        text = zf.read(zf.namelist()[0]).decode("utf-8-sig")
        assert text == HEADER + "\r\nNo data matches the criteria.\r\n"


def test_monthly_quota_per_endpoint():
    with start_sandbox(**{**FAST, "export_quota": 2, "futures_weight_limit": 100_000}) as sx:
        c = SignedClient(sx.url)
        now = int(time.time() * 1000)
        p = {"startTime": now - DAY, "endTime": now}
        assert [c.get("/fapi/v1/order/asyn", p).status_code for _ in range(2)] == [200, 200]
        r = c.get("/fapi/v1/order/asyn", p)
        assert r.status_code == 400 and "monthly limit" in r.json()["msg"]
        assert c.get("/papi/v1/um/order/asyn", p).status_code == 200  # separate quota per endpoint
        st = sx.stats()
        assert st["export_ids_created"] == {"usdm": 2, "pm_um": 1} and st["export_quota_rejections"] == 1


def test_create_fault_spends_quota_but_loses_answer():
    with start_sandbox(**{**FAST, "fault_rate_5xx": 1.0, "futures_weight_limit": 100_000}) as sx:
        c = SignedClient(sx.url)
        now = int(time.time() * 1000)
        r = c.get("/fapi/v1/order/asyn", {"startTime": now - DAY, "endTime": now})
        assert r.status_code == 503 and r.json()["code"] == -1000
        assert sx.stats()["export_ids_created"] == {"usdm": 1}  # created and counted, answer lost
        r = c.get("/fapi/v1/allOrders")
        assert r.status_code == 503


def test_html_and_timeout_faults():
    with start_sandbox(**{**FAST, "fault_rate_html": 1.0}) as sx:
        r = requests.get(sx.url + "/api/v3/time")
        assert r.status_code == 502 and r.headers["Content-Type"].startswith("text/html")
    with start_sandbox(**{**FAST, "fault_rate_timeout": 1.0, "fault_timeout_seconds": 2.0}) as sx:
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.get(sx.url + "/api/v3/time", timeout=0.3)
        assert sx.stats()["faults"] == {"timeout": 1}


def test_truncated_download_fault():
    with start_sandbox(**{**FAST, "fault_rate_truncate": 1.0}) as sx:
        c = SignedClient(sx.url)
        now = int(time.time() * 1000)
        did = c.get("/fapi/v1/order/asyn", {"startTime": now - 50 * DAY, "endTime": now}).json()["downloadId"]
        info, _ = _wait_completed(c, "/fapi/v1/order/asyn/id", did)
        u = urlsplit(info["url"])
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
        conn.request("GET", f"{u.path}?{u.query}")
        resp = conn.getresponse()
        promised = int(resp.getheader("Content-Length"))
        with pytest.raises(http.client.IncompleteRead):
            resp.read()
        assert promised > 0
        conn.close()

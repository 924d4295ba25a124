"""REST transport against a scripted loopback server: retries, 429/418, -1021, garbage, export safety, errors."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path

import pytest

from pipeline.binance import EXPORT_ENDPOINTS, BinanceClient, Credentials, MissingCredentials, errors
from pipeline.binance.clock import SYNC_SAMPLES
from pipeline.binance.signing import HmacSigner
from pipeline.binance.transport import RetryPolicy
from pipeline.settings import Secret
from pipeline.times import fmt_ms
from tests.support.fake_binance import Answer, err, fake_binance

API_KEY = "SECRETKEY-4f1d2c9a8b7e6d5c"
API_SECRET = "SECRETSECRET-9a8b7c6d5e4f3a2b"
USDM = EXPORT_ENDPOINTS[("usdm", "order")]
PM = EXPORT_ENDPOINTS[("pm_um", "order")]
ORDERS = [{"symbol": "BTCUSDT", "orderId": 1, "price": "1.00000000"}]
# a read the fake holds (HELD_S) outlasts the client's timeout (SHORT_TIMEOUT_S); the timeout is long enough that an
# answer the fake does not hold never hits it on a loaded machine
SHORT_TIMEOUT_S = 1.5
HELD_S = 4.0


class FakeTime:
    """Injectable time: sleeping advances it instantly."""

    def __init__(self) -> None:
        self.t = time.time()
        self.slept: list[float] = []

    def time(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def make_client(url: str, tmp_path: Path, ft: FakeTime, **kw) -> BinanceClient:
    creds = Credentials(api_key=Secret(API_KEY), signer=HmacSigner(Secret(API_SECRET)))
    kw.setdefault("retry", RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=8, jitter=0.25))
    return BinanceClient(
        creds,
        spot_url=url,
        ws_api_url=url.replace("http", "ws") + "/ws-api/v3",
        futures_url=url,
        papi_url=url,
        budget_dir=tmp_path / "budget",
        sleep=ft.sleep,
        now=ft.time,
        **kw,
    )


@pytest.fixture
def env(tmp_path):
    ft = FakeTime()
    with fake_binance() as fb:
        client = make_client(fb.url, tmp_path, ft, timeout=10.0)
        yield fb, client, ft
        client.close()


def test_signed_request_wire_format(env) -> None:
    fb, client, _ = env
    fb.set("/api/v3/allOrders", Answer(200, ORDERS))
    assert client.spot.all_orders("BTCUSDT", order_id=0, limit=5) == ORDERS
    seen = fb.calls("/api/v3/allOrders")[-1]
    assert seen.headers["X-MBX-APIKEY"] == API_KEY
    rest, sig = seen.query.rsplit("&signature=", 1)  # signature is the LAST parameter
    assert rest.startswith("symbol=BTCUSDT&orderId=0&limit=5&recvWindow=5000&timestamp=")
    assert sig == hmac.new(API_SECRET.encode(), rest.encode(), hashlib.sha256).hexdigest()


def test_requests_reuse_one_pooled_connection(env) -> None:
    fb, client, _ = env
    fb.set("/api/v3/allOrders", Answer(200, ORDERS))
    for _ in range(3):
        client.spot.all_orders("BTCUSDT")
    ports = {s.client_port for s in fb.seen}
    assert len(fb.seen) >= 5 and len(ports) == 1  # exchangeInfo, time syncs, 3 x allOrders: one TCP connection


def test_clock_offset_is_applied_to_timestamps(env) -> None:
    fb, client, ft = env
    fb.set("/api/v3/time", lambda: Answer(200, {"serverTime": int(ft.t * 1000) + 5000}))
    fb.set("/api/v3/allOrders", Answer(200, ORDERS))
    client.spot.all_orders("BTCUSDT")
    sent = int(fb.calls("/api/v3/allOrders")[-1].params["timestamp"])
    assert abs(sent - (ft.t * 1000 + 5000)) < 500
    assert abs(client.clocks["spot"].offset_ms - 5000) < 500


def test_minus_1021_resyncs_and_retries_once(env) -> None:
    fb, client, _ = env
    fb.set(
        "/api/v3/allOrders",
        err(400, -1021, "Timestamp for this request is outside of the recvWindow."),
        Answer(200, ORDERS),
    )
    assert client.spot.all_orders("BTCUSDT") == ORDERS
    assert len(fb.calls("/api/v3/time")) == 2 * SYNC_SAMPLES  # first sync + re-sync
    assert len(fb.calls("/api/v3/allOrders")) == 2
    fb.set("/api/v3/allOrders", err(400, -1021, "Timestamp for this request is outside of the recvWindow."))
    with pytest.raises(errors.TimestampRejected, match="re-synced"):
        client.spot.all_orders("BTCUSDT")
    assert len(fb.calls("/api/v3/allOrders")) == 4 and len(fb.calls("/api/v3/time")) == 3 * SYNC_SAMPLES


def test_timestamp_is_taken_after_waiting_for_the_budget(env) -> None:
    """reserve() may sleep into the next minute; a timestamp signed before that sleep would be ~60 s stale (-1021)."""
    fb, client, ft = env
    fb.set("/api/v3/allOrders", Answer(200, ORDERS))
    client.spot.all_orders("BTCUSDT")  # learns limits (defaults: 6000/min) and syncs the clock
    budget = client.budgets["spot"]
    window = str(client.clocks["spot"].now_ms() // 60_000)
    budget.reserve(5400 - budget.snapshot()["windows"]["60000"][window])  # 90 % of the minute is used up
    before = ft.t
    client.spot.all_orders("BTCUSDT")
    assert ft.t - before > 0 and ft.slept  # waited for the next minute
    sent = int(fb.calls("/api/v3/allOrders")[-1].params["timestamp"])
    assert abs(sent - client.clocks["spot"].now_ms()) < 1000, "signed before the wait"


def test_dropped_connection_is_retried_for_reads(env) -> None:
    fb, client, ft = env
    fb.set("/api/v3/allOrders", Answer(drop=True), Answer(200, ORDERS))
    assert client.spot.all_orders("BTCUSDT") == ORDERS
    assert len(fb.calls("/api/v3/allOrders")) == 2 and len(ft.slept) == 1 and 0.5 <= ft.slept[0] <= 0.625


def test_busy_codes_are_server_errors_and_retried_even_with_a_4xx(env) -> None:
    fb, client, _ = env
    fb.set("/fapi/v1/allOrders", err(400, -1008, "Request throttled by system-level protection."))
    with pytest.raises(errors.ServerError, match=r"(?i)try again later"):
        client.futures.all_orders()
    assert len(fb.calls("/fapi/v1/allOrders")) == 4


def test_5xx_and_gateway_pages_are_retried_for_reads(env) -> None:
    fb, client, ft = env
    fb.set(
        "/api/v3/allOrders",
        err(503, -1000, "Unknown error, please check your request or try again later."),
        Answer(502, "<html><center>502 Bad Gateway</center></html>", {"Content-Type": "text/html"}),
        Answer(200, ORDERS),
    )
    assert client.spot.all_orders("BTCUSDT") == ORDERS
    assert len(fb.calls("/api/v3/allOrders")) == 3
    assert len(ft.slept) == 2 and 0.5 <= ft.slept[0] <= 0.625 and 1.0 <= ft.slept[1] <= 1.25
    fb.set("/api/v3/allOrders", err(500, -1001, "Internal error."))
    with pytest.raises(errors.ServerError):
        client.spot.all_orders("BTCUSDT")
    assert len(fb.calls("/api/v3/allOrders")) == 3 + 4  # bounded


def test_timeouts_are_retried_for_reads(tmp_path) -> None:
    ft = FakeTime()
    with fake_binance() as fb:
        client = make_client(fb.url, tmp_path, ft, timeout=SHORT_TIMEOUT_S)
        fb.set("/fapi/v1/allOrders", Answer(200, [], delay=HELD_S), Answer(200, ORDERS))
        assert client.futures.all_orders() == ORDERS
        assert len(fb.calls("/fapi/v1/allOrders")) == 2


@pytest.mark.parametrize(
    "answer",
    [
        err(503, -1007, "Timeout waiting for response from backend server."),
        Answer(200, [], delay=HELD_S),
        Answer(drop=True),
        Answer(502, "<html>bad gateway</html>"),
    ],
)
def test_create_export_is_never_retried(tmp_path, answer) -> None:
    ft = FakeTime()
    with fake_binance() as fb:
        client = make_client(fb.url, tmp_path, ft, timeout=SHORT_TIMEOUT_S)
        fb.set(USDM.create_path, answer, Answer(200, {"downloadId": "1", "avgCostTimestampOfLast30d": 1}))
        with pytest.raises(errors.OutcomeUnknown) as info:
            client.create_export(USDM, 1, 2)
        assert len(fb.calls(USDM.create_path)) == 1
        text = str(info.value)
        assert "quota" in text and "download history" in text and "ledger" in text
        assert client.weight_used()["futures"] >= 1000


def test_create_export_success_and_link(env) -> None:
    fb, client, _ = env
    fb.set(PM.create_path, Answer(200, {"downloadId": "545923594199212032", "avgCostTimestampOfLast30d": 7241837}))
    fb.set(
        PM.link_path,
        Answer(
            200,
            {
                "downloadId": "545923594199212032",
                "status": "processing",
                "url": "",
                "s3Link": None,
                "notified": False,
                "expirationTimestamp": -1,
                "isExpired": None,
            },
        ),
    )
    assert client.create_export(PM, 1000, 2000)["downloadId"] == "545923594199212032"
    assert client.export_link(PM, "545923594199212032")["status"] == "processing"
    assert fb.calls(PM.create_path)[0].params["startTime"] == "1000"
    assert fb.calls(PM.link_path)[0].params["downloadId"] == "545923594199212032"
    assert client.weight_used()["papi"] == 1500 + 10


def test_quota_exhaustion_is_classified(env) -> None:
    fb, client, _ = env
    fb.set(USDM.create_path, err(400, -4999, "The number of downloads has reached the monthly limit."))
    with pytest.raises(errors.ExportQuotaExhausted, match="quota"):
        client.create_export(USDM, 1, 2)
    fb.set(USDM.create_path, err(400, -1102, "Mandatory parameter 'startTime' was not sent."))
    with pytest.raises(errors.InvalidParameter):
        client.create_export(USDM, 1, 2)


def test_429_waits_retry_after_and_blocks_the_host(env) -> None:
    fb, client, ft = env
    msg = "Too much request weight used; current limit is 6000 request weight per 1 MINUTE."
    fb.set("/api/v3/allOrders", err(429, -1003, msg, **{"Retry-After": "7"}), Answer(200, ORDERS))
    t0 = ft.t
    assert client.spot.all_orders("BTCUSDT") == ORDERS
    assert ft.t - t0 >= 7.0  # waited Retry-After (fake time)
    assert len(fb.calls("/api/v3/allOrders")) == 2
    state = client.budgets["spot"].snapshot()
    assert state["blocked_kind"] == "429" and state["limits"] == [(60_000, 6000)]


def test_429_on_create_export_is_not_retried(env) -> None:
    fb, client, _ = env
    fb.set(
        USDM.create_path,
        err(
            429,
            -1003,
            "Too much request weight used; current limit is 2400 request weight per 1 MINUTE.",
            **{"Retry-After": "30"},
        ),
    )
    with pytest.raises(errors.RateLimited) as info:
        client.create_export(USDM, 1, 2)
    assert info.value.retry_after == 30 and len(fb.calls(USDM.create_path)) == 1


def test_418_raises_ip_banned_with_the_time_and_stops(env, tmp_path) -> None:
    fb, client, ft = env
    until = int(ft.t * 1000) + 3 * 3600 * 1000
    fb.set(
        "/api/v3/allOrders",
        err(
            418,
            -1003,
            f"Way too much request weight used; IP banned until {until}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
            **{"Retry-After": "10800"},
        ),
    )
    with pytest.raises(errors.IpBanned) as info:
        client.spot.all_orders("BTCUSDT")
    assert info.value.until_ms == until and info.value.http_status == 418
    assert fmt_ms(until) in str(info.value) and "stopped" in str(info.value)
    assert ft.slept == [] and len(fb.calls("/api/v3/allOrders")) == 1
    # another client (process) on this machine does not even send: the shared state says "banned"
    other = make_client(fb.url, tmp_path, FakeTime())
    with pytest.raises(errors.IpBanned):
        other.spot.account()
    assert len(fb.calls("/api/v3/account")) == 0


def test_short_ban_is_waited_out_when_allowed(tmp_path) -> None:
    ft = FakeTime()
    with fake_binance() as fb:
        client = make_client(fb.url, tmp_path, ft, retry=RetryPolicy(max_ban_wait=300))
        until = int(ft.t * 1000) + 120_000
        fb.set("/api/v3/allOrders", err(418, -1003, f"IP banned until {until}."), Answer(200, ORDERS))
        assert client.spot.all_orders("BTCUSDT") == ORDERS
        assert client.clocks["spot"].now_ms() >= until


def test_html_instead_of_json_is_unexpected_response(env) -> None:
    fb, client, _ = env
    page = "<!DOCTYPE html><html><head><title>Binance maintenance</title></head><body>back soon</body></html>"
    fb.set("/api/v3/allOrders", Answer(200, page, {"Content-Type": "text/html; charset=utf-8"}))
    with pytest.raises(errors.UnexpectedResponse) as info:
        client.spot.all_orders("BTCUSDT")
    text = str(info.value)
    assert "HTTP 200" in text and "text/html" in text and "<!DOCTYPE html>" in text and "/api/v3/allOrders" in text
    assert "signature" not in text and "timestamp=" not in text
    assert len(fb.calls("/api/v3/allOrders")) == 1  # a 200 page is not a transient server error


@pytest.mark.parametrize(
    ("answer", "cls", "words"),
    [
        (
            err(401, -2015, "Invalid API-key, IP, or permissions for action."),
            errors.ApiKeyRejected,
            ["whitelist", "Enable Reading"],
        ),
        (
            err(400, -1022, "Signature for this request is not valid."),
            errors.InvalidSignature,
            ["BINANCE_PRIVATE_KEY_FILE", "key type"],
        ),
        (err(400, -1121, "Invalid symbol."), errors.BadSymbol, ["delisted"]),
        (err(400, -1127, "More than 24 hours between startTime and endTime."), errors.WindowTooLarge, ["24 h"]),
        (
            err(
                400, -2026, "Order was canceled or expired with no executed qty over 90 days ago and has been archived."
            ),
            errors.OrderArchived,
            ["archived"],
        ),
        (err(400, -2013, "Order does not exist."), errors.NoSuchOrder, ["no such order"]),
        (err(400, -1128, "Combination of optional parameters invalid."), errors.InvalidParameter, ["bug"]),
        (err(400, -1131, "recvWindow must be less than 60000"), errors.InvalidParameter, ["bug"]),
        (err(401, -2014, "API-key format invalid."), errors.ApiKeyRejected, ["BINANCE_API_KEY"]),
        (err(401, -1099, "Not found, unauthenticated, or unauthorized"), errors.ApiKeyRejected, ["whitelist"]),
        (err(400, -4141, "Symbol is closed."), errors.BadSymbol, ["delisted", "skip"]),
        (err(400, -4144, "Invalid pair"), errors.BadSymbol, ["skip"]),
        (
            err(400, -4165, "Invalid time interval. Maximum time interval is 7 days."),
            errors.WindowTooLarge,
            ["7 days", "split"],
        ),
        (err(400, -9999, "Something new."), errors.BinanceAPIError, ["-9999"]),
    ],
)
def test_error_mapping(env, answer, cls, words) -> None:
    fb, client, _ = env
    fb.set("/api/v3/allOrders", answer)
    with pytest.raises(cls) as info:
        client.spot.all_orders("BTCUSDT")
    assert isinstance(info.value, errors.BinanceError)
    assert info.value.code == answer.body["code"] and info.value.http_status == answer.status
    assert info.value.endpoint == "/api/v3/allOrders"
    for w in words:
        assert w.lower() in str(info.value).lower()
    assert len(fb.calls("/api/v3/allOrders")) == 1


def test_signed_call_without_credentials_says_which_env_vars(tmp_path) -> None:
    with fake_binance() as fb:
        client = BinanceClient(None, spot_url=fb.url, futures_url=fb.url, papi_url=fb.url, budget_dir=tmp_path / "b")
        assert isinstance(client.spot.server_time(), int)  # public endpoint works
        with pytest.raises(MissingCredentials, match="BINANCE_API_KEY"):
            client.spot.all_orders("BTCUSDT")
        assert fb.calls("/api/v3/allOrders") == []


def test_connection_refused_is_transport_error(tmp_path) -> None:
    ft = FakeTime()
    client = make_client("http://127.0.0.1:9", tmp_path, ft, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(errors.TransportError, match="no answer") as info:
        client.futures.all_orders()
    assert "signature" not in str(info.value) and info.value.__cause__ is None

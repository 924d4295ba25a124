"""WS API envelope/signing, shared spot weight counter, fixed scaled windows, 429 -> 418 escalation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import signal
import subprocess
import sys
import time

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from websockets.sync.client import connect

from pipeline.sandbox.auth import ApiError
from pipeline.sandbox.limits import WeightLimiter, scaled_interval
from pipeline.sandbox.testing import SignedClient, start_sandbox

KEY, SECRET = "sandbox-api-key", "sandbox-api-secret"


def _ws_sign(params: dict) -> dict:
    payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
    return {**params, "signature": hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()}


def _away_from_minute_boundary() -> None:
    """Weight windows are fixed 1-minute windows: don't start a counting test just before one resets."""
    left = 60_000 - int(time.time() * 1000) % 60_000
    if left < 5_000:
        time.sleep(left / 1000 + 0.05)


def _call(ws, req_id, method, params=None):
    ws.send(json.dumps({"id": req_id, "method": method, "params": params or {}}))
    return json.loads(ws.recv(timeout=5))


def test_ws_api_envelope_signing_and_shared_weight():
    with start_sandbox(
        listed_symbols=30, active_symbols=3, history_days=10, busy_day_orders=20, futures_history_days=10
    ) as sx:
        sym = sx.truth()["active"][0]
        truth_orders = [
            {k: v for k, v in o.items() if k != "archived"}
            for o in sx.truth()["spot_orders"]
            if o["symbol"] == sym and not o["archived"]
        ]
        _away_from_minute_boundary()
        with connect(sx.ws_url) as ws:
            r = _call(ws, 1, "time")
            assert r["id"] == 1 and r["status"] == 200 and "serverTime" in r["result"]
            assert r["rateLimits"][0] == {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 6000,
                "count": 3,
            }  # 2 for the connection + 1
            params = _ws_sign({"apiKey": KEY, "symbol": sym, "limit": 5, "timestamp": int(time.time() * 1000)})
            r = _call(ws, "a", "allOrders", params)
            assert r["status"] == 200, r
            assert r["result"] == truth_orders[-5:]
            assert r["rateLimits"][0]["count"] == 23
            # REST shares the counter
            rest = SignedClient(sx.url).get("/api/v3/time", signed=False)
            assert rest.headers["X-MBX-USED-WEIGHT-1M"] == "24"
            # version-prefixed method name
            assert (
                _call(
                    ws,
                    2,
                    "v3/order.status",
                    _ws_sign(
                        {
                            "apiKey": KEY,
                            "symbol": sym,
                            "orderId": truth_orders[0]["orderId"],
                            "timestamp": int(time.time() * 1000),
                        }
                    ),
                )["result"]
                == truth_orders[0]
            )
            bad = {**params, "signature": "0" * 64}
            r = _call(ws, 3, "allOrders", bad)
            assert r["status"] == 400 and r["error"]["code"] == -1022
            r = _call(
                ws, 4, "allOrders", _ws_sign({"apiKey": "nope", "symbol": sym, "timestamp": int(time.time() * 1000)})
            )
            assert r["status"] == 401 and r["error"]["code"] == -2015
            r = _call(ws, 5, "allOrders", _ws_sign({"apiKey": KEY, "timestamp": int(time.time() * 1000)}))
            assert r["status"] == 400 and r["error"]["code"] == -1102
            r = _call(ws, 6, "account.status", _ws_sign({"apiKey": KEY, "timestamp": int(time.time() * 1000) - 10_000}))
            assert r["error"]["code"] == -1021
            r = _call(
                ws,
                7,
                "allOrderLists",
                _ws_sign(
                    {"apiKey": KEY, "fromId": 1, "startTime": 0, "endTime": 1000, "timestamp": int(time.time() * 1000)}
                ),
            )
            assert r["status"] == 200 and r["result"] == []  # WS ignores fromId with times (REST: -1128)
            r = _call(ws, 8, "nope.method")
            assert r["status"] == 400 and r["id"] == 8
        with connect(sx.ws_url + "?returnRateLimits=false") as ws:
            assert "rateLimits" not in _call(ws, 1, "ping")


def test_ws_api_strictness():
    """The WS API applies the REST rules: recvWindow, 24 h windows, limit, symbols, mandatory apiKey."""
    with start_sandbox(
        listed_symbols=10, active_symbols=2, history_days=3, busy_day_orders=5, futures_history_days=5
    ) as sx:
        sym = sx.truth()["active"][0]
        now = int(time.time() * 1000)

        def signed(**params):
            return _ws_sign({"apiKey": KEY, "timestamp": int(time.time() * 1000), **params})

        cases = [
            ("allOrders", signed(symbol=sym, recvWindow=60001), -1131),
            ("allOrders", signed(symbol=sym, startTime=now - 86_400_001, endTime=now), -1127),
            ("allOrderLists", signed(startTime=now - 86_400_001, endTime=now), -1127),
            ("allOrders", signed(symbol=sym, limit=1001), -1130),
            ("allOrderLists", signed(limit=1001), -1130),
            ("allOrders", signed(symbol="NOPEUSDT"), -1121),
            ("order.status", signed(symbol=sym, orderId=1), -2013),
            ("allOrders", {k: v for k, v in signed(symbol=sym).items() if k != "apiKey"}, -1102),
        ]
        with connect(sx.ws_url) as ws:
            for i, (method, params, code) in enumerate(cases):
                r = _call(ws, i, method, params)
                assert r["id"] == i and r["status"] == 400 and r["error"]["code"] == code, (method, params, r)
            assert (
                _call(ws, 99, "allOrders", signed(symbol=sym, startTime=now - 86_400_000, endTime=now))["status"] == 200
            )


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_ws_api_key_pair_signatures(kind):
    """Ed25519/RSA over the WS API: base64 of the sorted payload, unencoded; another key's signature is -1022."""

    def new_key():
        return ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else rsa.generate_private_key(65537, 2048)

    def sign(key, params: dict) -> dict:
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params)).encode()
        raw = key.sign(payload) if kind == "ed25519" else key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        return {**params, "signature": base64.b64encode(raw).decode()}

    key, other = new_key(), new_key()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with (
        start_sandbox(
            listed_symbols=10,
            active_symbols=2,
            history_days=3,
            busy_day_orders=5,
            futures_history_days=5,
            **{f"{kind}_public_key_pem": pem},
        ) as sx,
        connect(sx.ws_url) as ws,
    ):
        params = {"apiKey": KEY, "symbol": sx.truth()["active"][0], "limit": 3, "timestamp": int(time.time() * 1000)}
        assert _call(ws, 1, "allOrders", sign(key, params))["status"] == 200
        r = _call(ws, 2, "allOrders", sign(other, params))
        assert r["status"] == 400 and r["error"]["code"] == -1022
        r = _call(ws, 3, "allOrders", _ws_sign(params))  # an HMAC signature on a key-pair API key
        assert r["status"] == 400 and r["error"]["code"] == -1022


def test_scaled_window_header_and_exchange_info_agree():
    for scale, header, interval in (
        (60.0, "X-MBX-USED-WEIGHT-1S", ("SECOND", 1)),
        (10.0, "X-MBX-USED-WEIGHT-6S", ("SECOND", 6)),
    ):
        with start_sandbox(
            listed_symbols=10,
            active_symbols=2,
            history_days=3,
            busy_day_orders=5,
            futures_history_days=5,
            time_scale=scale,
        ) as sx:
            for path in ("/api/v3/exchangeInfo", "/fapi/v1/exchangeInfo"):
                r = requests.get(sx.url + path)
                assert header in r.headers
                rl = r.json()["rateLimits"][0]
                assert (rl["interval"], rl["intervalNum"]) == interval
            # durations are scaled, the clock is not: server time is real time
            assert abs(requests.get(sx.url + "/api/v3/time").json()["serverTime"] - time.time() * 1000) < 2000


def test_429_then_418_ban_and_ws_429():
    with start_sandbox(
        listed_symbols=10,
        active_symbols=2,
        history_days=3,
        busy_day_orders=5,
        futures_history_days=5,
        spot_weight_limit=60,
    ) as sx:
        s = requests.Session()
        _away_from_minute_boundary()
        codes = [s.get(sx.url + "/api/v3/exchangeInfo").status_code for _ in range(3)]  # 20 each -> 60
        assert codes == [200, 200, 200]
        r = s.get(sx.url + "/api/v3/exchangeInfo")
        assert r.status_code == 429
        assert r.json()["code"] == -1003 and "current limit is 60 request weight per 1 MINUTE" in r.json()["msg"]
        retry = int(r.headers["Retry-After"])
        assert 1 <= retry <= 60
        r = s.get(sx.url + "/api/v3/time")  # ignored Retry-After -> banned
        assert r.status_code == 418 and r.json()["code"] == -1003 and "IP banned until" in r.json()["msg"]
        assert 100 <= int(r.headers["Retry-After"]) <= 120
        assert s.get(sx.url + "/api/v3/time").status_code == 418
        st = sx.stats()
        assert st["http_429"] == 1 and st["http_418"] == 2
        sx.reset_weights()
        assert s.get(sx.url + "/api/v3/time").status_code == 200
        sx.reset_weights()
        _away_from_minute_boundary()
        # WS: 429 carries retryAfter (epoch ms) and serverTime; then a 418 closes the connection
        with connect(sx.ws_url) as ws:
            for i in range(2):
                assert _call(ws, i, "exchangeInfo")["status"] == 200
            r = _call(ws, 9, "exchangeInfo")
            assert r["status"] == 429 and r["error"]["code"] == -1003
            assert r["error"]["data"]["retryAfter"] > r["error"]["data"]["serverTime"]
            r = _call(ws, 10, "time")
            assert r["status"] == 418


def test_weight_is_counted_per_ip_and_limiter_group():
    """Limits are per IP (docs/binance-facts.md §Rate limits): one IP over its budget affects neither another IP
    nor futures."""
    limiter = WeightLimiter(
        limits={"spot": 60, "futures": 60}, interval=scaled_interval(1.0), ban_ms=120_000, max_ban_ms=3 * 86_400_000
    )
    now = 28_333_334 * 60_000  # a minute boundary
    assert limiter.charge("10.0.0.1", "spot", 60, now) == 60
    with pytest.raises(ApiError) as info:
        limiter.charge("10.0.0.1", "spot", 1, now + 1)
    assert info.value.http_status == 429 and info.value.headers["Retry-After"] == "60"
    assert limiter.charge("10.0.0.2", "spot", 60, now + 2) == 60
    assert limiter.charge("10.0.0.1", "futures", 5, now + 3) == 5
    assert limiter.used("10.0.0.1", "spot", now + 60_000) == 0  # fixed window: resets at the minute boundary


def test_cli_starts_and_serves(tmp_path):
    truth = tmp_path / "truth.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.sandbox.cli",
            "--port",
            "0",
            "--listed-symbols",
            "20",
            "--active-symbols",
            "3",
            "--history-days",
            "5",
            "--busy-day-orders",
            "10",
            "--time-scale",
            "60",
            "--truth",
            str(truth),
        ],
        stdout=subprocess.PIPE,
        text=True,
        # started as a background job of a non-interactive shell would start it: SIGTERM and SIGINT ignored, which
        # the child inherits; it must stop on them all the same
        preexec_fn=lambda: [signal.signal(s, signal.SIG_IGN) for s in (signal.SIGTERM, signal.SIGINT)],
    )
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        url = line.split("listening on ")[1].split()[0]
        assert requests.get(url + "/api/v3/time", timeout=60).json()["serverTime"] > 0
        assert "X-MBX-USED-WEIGHT-1S" in requests.get(url + "/fapi/v1/time", timeout=60).headers
        assert json.loads(truth.read_text())["active"]
    finally:
        proc.terminate()
        assert proc.wait(60) == 0  # a ceiling: it stops at once

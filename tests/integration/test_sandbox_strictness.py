"""The sandbox must reject what Binance rejects (code, message, HTTP status); a lenient sandbox makes tests lie."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from pipeline.sandbox.testing import SignedClient, start_sandbox

KEY, SECRET = "sandbox-api-key", "sandbox-api-secret"


@pytest.fixture(scope="module")
def sx():
    with start_sandbox(
        listed_symbols=40,
        active_symbols=4,
        history_days=10,
        orders_per_day=5,
        busy_day_orders=50,
        futures_history_days=30,
        futures_weight_limit=100_000,
        papi_weight_limit=100_000,
    ) as sx:
        yield sx


@pytest.fixture()
def client(sx):
    sx.reset_weights()
    return SignedClient(sx.url)


def _sym(sx) -> str:
    return sx.truth()["active"][0]


def _hmac(q: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()


def _err(resp, status: int, code: int, msg: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"] == "application/json;charset=UTF-8"
    body = resp.json()
    assert body["code"] == code, body
    if msg is not None:
        assert body["msg"] == msg
    return body


def test_valid_signed_request_passes(sx, client):
    r = client.get("/api/v3/allOrders", {"symbol": _sym(sx), "limit": 5})
    assert r.status_code == 200, r.text
    assert len(r.json()) == 5
    assert r.headers["X-MBX-USED-WEIGHT-1M"] == "20"


def test_missing_api_key(sx):
    c = SignedClient(sx.url, api_key=None)
    _err(c.get("/api/v3/allOrders", {"symbol": _sym(sx)}), 401, -2014, "API-key format invalid.")


def test_unknown_api_key(sx):
    c = SignedClient(sx.url, api_key="someone-else")
    _err(c.get("/api/v3/account"), 401, -2015, "Invalid API-key, IP, or permissions for action.")
    _err(c.get("/fapi/v1/allOrders"), 401, -2015)


def test_bad_hmac_signature(sx):
    c = SignedClient(sx.url, secret="wrong-secret")
    _err(c.get("/api/v3/allOrders", {"symbol": _sym(sx)}), 400, -1022, "Signature for this request is not valid.")
    _err(c.get("/fapi/v1/order/asyn/id", {"downloadId": "1"}), 400, -1022)


def test_signature_covers_exact_bytes_and_must_be_last(sx, client):
    ts = int(time.time() * 1000)
    q = f"symbol={_sym(sx)}&limit=3&timestamp={ts}"
    sig = _hmac(q)
    assert client.get("/api/v3/allOrders", raw_query=f"{q}&signature={sig}").status_code == 200
    # same params, different order: the signed bytes differ -> rejected
    q2 = f"limit=3&symbol={_sym(sx)}&timestamp={ts}"
    _err(client.get("/api/v3/allOrders", raw_query=f"{q2}&signature={sig}"), 400, -1022)
    # signature not last
    _err(
        client.get("/api/v3/allOrders", raw_query=f"symbol={_sym(sx)}&signature={_hmac(q)}&limit=3&timestamp={ts}"),
        400,
        -1022,
    )
    # uppercase hex is accepted (HMAC output compared case-insensitively)
    assert client.get("/api/v3/allOrders", raw_query=f"{q}&signature={sig.upper()}").status_code == 200


def test_signature_over_query_plus_body_for_post_on_futures(sx):
    """totalParams = query string + body, concatenated without a separator (docs/binance-facts.md §Request signing)."""
    ts = int(time.time() * 1000)
    query, body = "downloadId=999", f"timestamp={ts}"
    sig = _hmac(query + body)
    r = requests.post(
        f"{sx.url}/fapi/v1/order/asyn/id?{query}",
        data=f"{body}&signature={sig}",
        headers={"X-MBX-APIKEY": KEY, "Content-Type": "application/x-www-form-urlencoded"},
    )
    _err(r, 400, -1130)  # authenticated fine; the id is unknown


def test_missing_signature_and_timestamp(sx, client):
    _err(
        client.get("/api/v3/allOrders", raw_query=f"symbol={_sym(sx)}&timestamp={int(time.time() * 1000)}"),
        400,
        -1102,
        "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
    )
    q = f"symbol={_sym(sx)}"
    _err(
        client.get("/api/v3/allOrders", raw_query=f"{q}&signature={_hmac(q)}"),
        400,
        -1102,
        "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
    )


@pytest.mark.parametrize(
    ("offset_ms", "recv", "code", "msg_part"),
    [
        (-6_000, None, -1021, "outside of the recvWindow"),
        (-20_000, 10_000, -1021, "outside of the recvWindow"),
        (1_500, None, -1021, "1000ms ahead"),
        (0, 60_001, -1131, "recvWindow"),
    ],
)
def test_timestamp_and_recv_window(sx, client, offset_ms, recv, code, msg_part):
    params = {"symbol": _sym(sx), "timestamp": int(time.time() * 1000) + offset_ms}
    if recv is not None:
        params["recvWindow"] = recv
    body = _err(client.get("/api/v3/allOrders", params), 400, code)
    assert msg_part in body["msg"]


def test_recv_window_accepts_60000_and_decimals(sx, client):
    ts = int(time.time() * 1000) - 30_000
    assert client.get("/api/v3/allOrders", {"symbol": _sym(sx), "recvWindow": 60000, "timestamp": ts}).ok
    assert client.get("/api/v3/allOrders", {"symbol": _sym(sx), "recvWindow": "45000.5", "timestamp": ts}).ok


def test_mandatory_symbol_unknown_symbol_and_delisted(sx, client):
    _err(
        client.get("/api/v3/allOrders"),
        400,
        -1102,
        "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
    )
    _err(client.get("/api/v3/allOrders", {"symbol": ""}), 400, -1102)
    _err(client.get("/api/v3/allOrders", {"symbol": "NOPEUSDT"}), 400, -1121, "Invalid symbol.")
    delisted = sx.truth()["delisted"]
    assert delisted and sx.truth()["delisted_orders"]
    _err(client.get("/api/v3/allOrders", {"symbol": delisted[0]}), 400, -1121, "Invalid symbol.")
    listed = {s["symbol"] for s in requests.get(f"{sx.url}/api/v3/exchangeInfo").json()["symbols"]}
    assert delisted[0] not in listed


def test_window_limit_and_param_rules(sx, client):
    now = int(time.time() * 1000)
    s = _sym(sx)
    _err(
        client.get("/api/v3/allOrders", {"symbol": s, "startTime": now - 86_400_001, "endTime": now}),
        400,
        -1127,
        "More than 24 hours between startTime and endTime.",
    )
    assert client.get("/api/v3/allOrders", {"symbol": s, "startTime": now - 86_400_000, "endTime": now}).ok
    assert client.get("/api/v3/allOrders", {"symbol": s, "startTime": now, "endTime": now}).ok  # equal allowed
    _err(
        client.get("/api/v3/allOrders", {"symbol": s, "limit": 1001}),
        400,
        -1130,
        "Data sent for parameter 'limit' is not valid.",
    )
    _err(client.get("/api/v3/allOrders", {"symbol": s, "limit": 0}), 400, -1130)
    _err(client.get("/api/v3/allOrders", {"symbol": s, "limit": "ten"}), 400, -1100)
    _err(client.get("/api/v3/allOrders", {"symbol": s, "bogus": 1}), 400, -1104)
    q = f"symbol={s}&symbol={s}&timestamp={now}"
    _err(client.get("/api/v3/allOrders", raw_query=f"{q}&signature={_hmac(q)}"), 400, -1101)
    _err(client.get("/api/v3/allOrderList", {"fromId": 1, "startTime": now - 1000}), 400, -1128)
    # allOrderList has the same 24 h window and limit rules
    _err(
        client.get("/api/v3/allOrderList", {"startTime": now - 86_400_001, "endTime": now}),
        400,
        -1127,
        "More than 24 hours between startTime and endTime.",
    )
    assert client.get("/api/v3/allOrderList", {"startTime": now - 86_400_000, "endTime": now}).ok
    _err(client.get("/api/v3/allOrderList", {"limit": 1001}), 400, -1130)
    assert client.get("/api/v3/allOrderList", {"limit": 1000}).ok


def test_order_lookup_errors(sx, client):
    s = _sym(sx)
    _err(client.get("/api/v3/order", {"symbol": s}), 400, -1102)
    _err(client.get("/api/v3/order", {"symbol": s, "orderId": 1}), 400, -2013, "Order does not exist.")
    _err(client.get("/api/v3/orderList", {"orderListId": 1}), 400, -2013)


def test_futures_rules(sx, client):
    now = int(time.time() * 1000)
    _err(client.get("/fapi/v1/allOrders", {"startTime": now - 8 * 86_400_000, "endTime": now}), 400, -4165)
    _err(client.get("/fapi/v1/allOrders", {"startTime": now, "endTime": now - 1}), 400, -1023)
    _err(client.get("/fapi/v1/order/asyn", {"startTime": now - 366 * 86_400_000, "endTime": now}), 400, -1127)
    _err(client.get("/fapi/v1/order/asyn", {"startTime": now, "endTime": now - 1}), 400, -1023)
    _err(client.get("/fapi/v1/order/asyn", {"endTime": now}), 400, -1102)
    _err(client.get("/papi/v1/um/order/asyn/id", {"downloadId": "123"}), 400, -1130)
    _err(client.get("/papi/v1/um/order/asyn", {"startTime": now - 366 * 86_400_000, "endTime": now}), 400, -1127)
    _err(client.get("/papi/v1/um/allOrders", {"startTime": now - 8 * 86_400_000, "endTime": now}), 400, -1102)
    pm_window = {"symbol": "BTCUSDT", "startTime": now - 8 * 86_400_000, "endTime": now}
    _err(client.get("/papi/v1/um/allOrders", pm_window), 400, -4165)
    assert sx.stats()["export_ids_created"] == {}  # none of the rejected creates spent quota


@pytest.mark.parametrize(
    ("path", "params", "weight"),
    [  # docs/binance-facts.md §Spot weights, §USDⓈ-M weights, §Export quotas
        ("/api/v3/time", None, 1),
        ("/api/v3/exchangeInfo", None, 20),
        ("/api/v3/account", {}, 20),
        ("/api/v3/allOrders", {"symbol": "SYM"}, 20),
        ("/api/v3/allOrderList", {}, 20),
        ("/api/v3/openOrders", {"symbol": "SYM"}, 6),
        ("/api/v3/openOrders", {}, 80),
        ("/api/v3/order", {"symbol": "SYM", "orderId": 1}, 4),
        ("/fapi/v1/time", None, 1),
        ("/fapi/v1/exchangeInfo", None, 1),
        ("/fapi/v1/allOrders", {}, 5),
        ("/fapi/v1/order/asyn", {"startTime": 0, "endTime": 1}, 1000),
        ("/fapi/v1/order/asyn/id", {"downloadId": "1"}, 10),
        ("/papi/v1/um/order/asyn", {"startTime": 0, "endTime": 1}, 1500),
        ("/papi/v1/um/order/asyn/id", {"downloadId": "1"}, 10),
    ],
)
def test_weights_follow_the_reference(sx, client, path, params, weight):
    """Weight is charged per request, also for rejected ones (an unknown order, an unknown download id)."""
    if params is not None and params.get("symbol") == "SYM":
        params = {**params, "symbol": _sym(sx)}
    r = client.get(path, params, signed=params is not None)
    assert r.status_code in (200, 400), r.text
    assert r.headers["X-MBX-USED-WEIGHT-1M"] == str(weight)


def test_unknown_path_is_404_not_json(sx):
    r = requests.get(f"{sx.url}/api/v3/nothingHere")
    assert r.status_code == 404
    assert "json" not in r.headers["Content-Type"]


def _pem(private) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_asymmetric_keys(kind):
    private = (
        ed25519.Ed25519PrivateKey.generate()
        if kind == "ed25519"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    other = (
        ed25519.Ed25519PrivateKey.generate()
        if kind == "ed25519"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    opts = {f"{kind}_public_key_pem": _pem(private)}
    with start_sandbox(
        listed_symbols=20, active_symbols=3, history_days=5, busy_day_orders=10, futures_history_days=10, **opts
    ) as sx:
        sym = sx.truth()["active"][0]
        good = SignedClient(sx.url, private_key=private)
        r = good.get("/api/v3/allOrders", {"symbol": sym, "limit": 2})
        assert r.status_code == 200, r.text
        assert good.get("/fapi/v1/allOrders").status_code == 200
        _err(SignedClient(sx.url, private_key=other).get("/api/v3/allOrders", {"symbol": sym}), 400, -1022)
        _err(SignedClient(sx.url).get("/api/v3/allOrders", {"symbol": sym}), 400, -1022)  # HMAC on an asym key
        # an un-URL-encoded base64 signature: '+' decodes to ' ' and fails, like on Binance
        q = f"symbol={sym}&timestamp={int(time.time() * 1000)}"
        raw = base64.b64encode(private.sign(q.encode()) if kind == "ed25519" else b"x").decode()
        if "+" in raw and kind == "ed25519":
            _err(good.get("/api/v3/allOrders", raw_query=f"{q}&signature={raw}"), 400, -1022)
        assert good.get("/api/v3/allOrders", raw_query=f"{q}&signature={quote(raw, safe='')}").status_code == (
            200 if kind == "ed25519" else 400
        )

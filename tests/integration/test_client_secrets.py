"""API key, secret and private key never show up in logs, exception texts or reprs (also after failing calls)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from pipeline.binance import EXPORT_ENDPOINTS, BinanceClient, Credentials, errors
from pipeline.binance.transport import RetryPolicy
from pipeline.settings import Settings
from tests.support.fake_binance import Answer, err, fake_binance, fake_ws

API_KEY = "LEAKCHECKKEY7c1e5b3a9d"
API_SECRET = "LEAKCHECKSECRET2f8e4d6c"
PASSWORD = "LEAKCHECKPASSWORD51"


def _failing_calls(client: BinanceClient, fb) -> list[BaseException]:
    """Drive every error path once; return the exceptions raised."""
    echo = f"<html>proxy says: your key {API_KEY} and secret {API_SECRET}</html>"
    fb.set("/api/v3/allOrders", Answer(200, echo, {"Content-Type": "text/html"}))
    fb.set("/api/v3/account", err(401, -2015, f"Invalid API-key {API_KEY}, IP, or permissions for action."))
    fb.set("/api/v3/openOrders", err(500, -1001, "Internal error."))
    fb.set("/api/v3/order", err(400, -1022, "Signature for this request is not valid."))
    fb.set("/fapi/v1/order/asyn", Answer(drop=True))
    fb.set(
        "/fapi/v1/allOrders", err(429, -1003, "Too much request weight used.", **{"Retry-After": "0"}), Answer(200, [])
    )
    calls = [
        lambda: client.spot.all_orders("BTCUSDT"),
        client.spot.account,
        client.spot.open_orders,
        lambda: client.spot.order("BTCUSDT", order_id=1),
        client.futures.all_orders,
        lambda: client.create_export(EXPORT_ENDPOINTS[("usdm", "order")], 1, 2),
    ]
    raised = []
    for call in calls:
        try:
            call()
        except errors.BinanceError as exc:
            raised.append(exc)
    return raised


def _texts(client, raised, caplog) -> str:
    parts = [
        repr(client),
        str(client),
        repr(client.credentials),
        str(client.credentials),
        repr(client.credentials.signer),
        repr(client.credentials.api_key),
        repr(client._session.headers),
        repr(vars(client)),
        caplog.text,
    ]
    parts += [f"{type(e).__name__}: {e} {e!r} {e.args} {e.__cause__!r} {e.__context__!r}" for e in raised]
    parts += [p.read_text() for p in client.budget_dir.iterdir() if p.is_file()]
    return "\n".join(parts)


@pytest.mark.parametrize("key_type", ["hmac", "ed25519"])
def test_secrets_never_leak(tmp_path: Path, caplog, key_type: str) -> None:
    caplog.set_level(logging.DEBUG)
    env = {"BINANCE_API_KEY": API_KEY}
    pem_lines: list[str] = []
    if key_type == "hmac":
        env["BINANCE_API_SECRET"] = API_SECRET
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSWORD.encode()),
        ).decode()
        pem_lines = [ln for ln in pem.splitlines() if "-----" not in ln and len(ln) > 20]
        (tmp_path / "k.pem").write_text(pem)
        env["BINANCE_PRIVATE_KEY_FILE"] = str(tmp_path / "k.pem")
    settings = Settings.from_env({**env, "BINANCE_PRIVATE_KEY_PASSWORD": PASSWORD})
    creds = Credentials.from_settings(settings)
    with fake_binance() as fb:
        client = BinanceClient(
            creds,
            spot_url=fb.url,
            futures_url=fb.url,
            papi_url=fb.url,
            budget_dir=tmp_path / "budget",
            retry=RetryPolicy(max_attempts=2, base_delay=0.01),
            timeout=10.0,  # a ceiling: no answer here is delayed on purpose
        )
        raised = _failing_calls(client, fb)
        assert client.futures.all_orders() == []
        client.close()
    assert len(raised) == 5  # the 429 was waited out and retried
    assert all(s.headers.get("X-MBX-APIKEY") == API_KEY for s in fb.seen if "signature=" in s.query)  # sent
    text = _texts(client, raised, caplog)
    assert "/api/v3/allOrders" in text  # the texts were really captured
    secrets = (API_KEY, API_SECRET) if key_type == "hmac" else (API_KEY, PASSWORD, *pem_lines)
    for secret in secrets:
        assert secret not in text
    assert "signature=" not in caplog.text.replace("signature=***", "")


def test_ws_api_secrets_never_leak(tmp_path: Path, caplog) -> None:
    """WS frames carry the apiKey in ``params``; error answers and garbage frames may echo it back."""
    caplog.set_level(logging.DEBUG)

    def answer(req: dict, n: int):
        if req["method"] == "openOrders.status":
            return f"<html>gateway saw {req['params']['apiKey']} / {API_SECRET}</html>"
        if n == 1 and req["method"] == "allOrders":
            return None  # drop the connection: reconnect path
        return {
            "id": req["id"],
            "status": 401,
            "error": {
                "code": -2015,
                "msg": f"Invalid API-key {req['params'].get('apiKey')}, IP, or permissions for action.",
            },
        }

    creds = Credentials.from_settings(Settings.from_env({"BINANCE_API_KEY": API_KEY, "BINANCE_API_SECRET": API_SECRET}))
    with fake_ws(answer) as srv:
        client = BinanceClient(
            creds,
            spot_url="http://127.0.0.1:9",
            ws_api_url=srv["url"],
            futures_url=srv["url"],
            papi_url=srv["url"],
            budget_dir=tmp_path / "budget",
            retry=RetryPolicy(max_attempts=2, base_delay=0.01),
            timeout=10.0,  # a ceiling: no answer here is delayed on purpose
        )
        raised = []
        for call in (lambda: client.spot_ws.all_orders("BTCUSDT"), client.spot_ws.open_orders, client.spot_ws.account):
            try:
                call()
            except errors.BinanceError as exc:
                raised.append(exc)
        ws_repr = repr(client.spot_ws)
        client.close()
    assert [type(e) for e in raised] == [errors.ApiKeyRejected, errors.UnexpectedResponse, errors.ApiKeyRejected]
    assert all(r["params"].get("apiKey") == API_KEY for r in srv["requests"] if "signature" in r["params"])  # sent
    text = _texts(client, raised, caplog) + ws_repr
    assert "allOrders" in text and "gateway saw" in text  # the texts were really captured
    assert API_KEY not in text and API_SECRET not in text


def test_signer_and_credentials_cannot_be_pickled() -> None:
    import pickle

    creds = Credentials.from_settings(Settings.from_env({"BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s"}))
    for obj in (creds, creds.signer):
        with pytest.raises(TypeError):
            pickle.dumps(obj)


def test_timing_sanity() -> None:
    assert time.time() > 1.6e9

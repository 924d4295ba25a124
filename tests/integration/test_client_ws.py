"""Spot WS API client: parity with REST on the sandbox (HMAC, Ed25519, RSA keys), reconnect, 429/418 handling."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

import pipeline.sandbox.testing as testing
from pipeline.binance import EXPORT_ENDPOINTS, BinanceClient, Credentials, errors
from pipeline.binance.budget import WeightBudget
from pipeline.binance.clock import SYNC_SAMPLES, ServerClock
from pipeline.binance.signing import HmacSigner
from pipeline.binance.ws import SpotWs
from pipeline.settings import Secret, Settings
from pipeline.times import fmt_ms
from tests.support.fake_binance import fake_ws


@pytest.fixture(scope="module")
def sandbox():
    with testing.start_sandbox(
        time_scale=60.0, listed_symbols=20, active_symbols=3, history_days=3, busy_day_orders=50
    ) as sx:
        yield sx


def _client(sx, tmp_path: Path, **env_extra: str) -> BinanceClient:
    env = {**testing.sandbox_env(sx, tmp_path), **env_extra}
    return BinanceClient.from_settings(Settings.from_env(env), budget_dir=tmp_path / "budget")


def test_ws_and_rest_return_the_same(sandbox, tmp_path: Path) -> None:
    client = _client(sandbox, tmp_path)
    truth = sandbox.truth()
    sym = truth["spot_orders"][0]["symbol"]
    oid = truth["spot_orders"][0]["orderId"]
    before = sandbox.stats()["weight"].get("spot", 0)
    rest, ws = client.spot_api("rest"), client.spot_api("ws")
    assert ws is client.spot_ws and rest is client.spot
    for name, call in [
        ("all_orders", lambda api: api.all_orders(sym, order_id=0, limit=50)),
        (
            "all_orders window",
            lambda api: api.all_orders(
                sym,
                start_time=truth["spot_orders"][0]["updateTime"],
                end_time=truth["spot_orders"][0]["updateTime"] + 3600_000,
            ),
        ),
        ("all_order_lists", lambda api: api.all_order_lists(from_id=0, limit=10)),
        ("open_orders", lambda api: api.open_orders()),
        ("open_orders sym", lambda api: api.open_orders(sym)),
        ("open_order_lists", lambda api: api.open_order_lists()),
        ("order_list", lambda api: api.order_list(order_list_id=truth["spot_order_lists"][0]["orderListId"])),
        ("order", lambda api: api.order(sym, order_id=oid)),
        ("account", lambda api: {k: v for k, v in api.account(omit_zero_balances=True).items() if k != "updateTime"}),
        ("exchange_info", lambda api: api.exchange_info([sym])["symbols"]),
    ]:
        assert call(rest) == call(ws), name
    assert isinstance(ws.server_time(), int)
    with pytest.raises(errors.BadSymbol):
        ws.all_orders("NOPEUSDT")
    now = int(time.time() * 1000)
    with pytest.raises(errors.WindowTooLarge):  # the WS API enforces the 24 h window too
        ws.all_orders(sym, start_time=now - 86_400_001, end_time=now)
    assert client.spot_ws.connections == 1  # one connection reused
    used = client.weight_used()["spot"]
    assert used == sandbox.stats()["weight"]["spot"] - before  # our count == the server's
    client.close()


def test_client_takes_its_limits_from_the_scaled_exchange_info(tmp_path: Path) -> None:
    """No hard-coded 6000/min: a sandbox at --time-scale 60 advertises 1-second windows and the budget follows."""
    with testing.start_sandbox(
        time_scale=60.0,
        spot_weight_limit=700,
        listed_symbols=10,
        active_symbols=2,
        history_days=2,
        busy_day_orders=10,
        futures_history_days=5,
    ) as sx:
        client = _client(sx, tmp_path)
        sym = sx.truth()["active"][0]
        client.spot.all_orders(sym, limit=1)
        snap = client.budgets["spot"].snapshot()
        assert snap["limits"] == [(1000, 700)] and snap["limits_source"] == "exchangeInfo"
        assert sx.stats()["by_endpoint"]["/api/v3/exchangeInfo"] == 1
        client.close()


def _pem(key, tmp_path: Path, name: str) -> tuple[Path, bytes]:
    priv = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path = tmp_path / name
    path.write_bytes(priv)
    return path, pub


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_key_pair_signing_accepted_by_the_sandbox(tmp_path: Path, kind: str) -> None:
    key = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else rsa.generate_private_key(65537, 2048)
    path, pub = _pem(key, tmp_path, "key.pem")
    opt = {"ed25519_public_key_pem": pub} if kind == "ed25519" else {"rsa_public_key_pem": pub}
    with testing.start_sandbox(
        time_scale=60.0, listed_symbols=10, active_symbols=2, history_days=2, busy_day_orders=10, **opt
    ) as sx:
        env = testing.sandbox_env(sx, tmp_path)
        assert "BINANCE_API_SECRET" not in env
        client = _client(sx, tmp_path, BINANCE_PRIVATE_KEY_FILE=str(path))
        assert client.credentials.signer.key_type == kind
        sym = sx.truth()["spot_orders"][0]["symbol"]
        assert client.spot.all_orders(sym, limit=5) == client.spot_ws.all_orders(sym, limit=5) != []
        ep = EXPORT_ENDPOINTS[("usdm", "order")]
        did = client.create_export(ep, int(time.time() * 1000) - 86_400_000, int(time.time() * 1000))["downloadId"]
        assert client.export_link(ep, did)["downloadId"] == did
        assert isinstance(client.papi.all_orders("BTCUSDT"), list)  # papi signs with the futures clock
        client.close()


# --- scripted WS server ----------------------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.t = time.time()
        self.slept: list[float] = []

    def time(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def _ws_client(url: str, tmp_path: Path, ft: FakeTime) -> BinanceClient:
    creds = Credentials(api_key=Secret("WSKEY-abc"), signer=HmacSigner(Secret("WSSECRET-def")))
    return BinanceClient(
        creds,
        spot_url="http://127.0.0.1:9",
        ws_api_url=url,
        futures_url="http://127.0.0.1:9",
        papi_url="http://127.0.0.1:9",
        budget_dir=tmp_path / "b",
        sleep=ft.sleep,
        now=ft.time,
        timeout=2.0,
    )


def ok(req: dict, result: Any, count: int = 20) -> dict:
    return {
        "id": req["id"],
        "status": 200,
        "result": result,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000, "count": count}
        ],
    }


def test_ws_reconnects_after_a_drop_and_signs_inside_params(tmp_path: Path) -> None:
    with fake_ws(lambda req, n: None if n == 1 else ok(req, [{"orderId": 7}])) as srv:
        client = _ws_client(srv["url"], tmp_path, FakeTime())
        assert client.spot_ws.all_orders("BTCUSDT", limit=1) == [{"orderId": 7}]
        assert srv["connections"] == 2 and client.spot_ws.connections == 2
        params = srv["requests"][-1]["params"]
        assert params["apiKey"] == "WSKEY-abc" and params["symbol"] == "BTCUSDT" and "signature" in params
        assert list(params)[-1] == "signature"
        assert client.budgets["spot"].snapshot()["limits"] == [(60_000, 6000)]  # learned from rateLimits
        client.close()


def test_ws_429_retry_after_is_epoch_ms_and_blocks_the_host(tmp_path: Path) -> None:
    retry_at = int(time.time() * 1000) + 1500

    def answer(req: dict, n: int) -> dict:
        if len([r for r in srv["requests"] if r["method"] == "allOrders"]) == 1:
            return {
                "id": req["id"],
                "status": 429,
                "error": {
                    "code": -1003,
                    "msg": "Too much request weight used; current limit is 6000 request weight per 1 MINUTE.",
                    "data": {"retryAfter": retry_at, "serverTime": retry_at - 1500},
                },
            }
        return ok(req, [])

    with fake_ws(answer) as srv:
        ft = FakeTime()
        client = _ws_client(srv["url"], tmp_path, ft)
        assert client.spot_ws.all_orders("BTCUSDT") == []
        assert client.budgets["spot"].snapshot()["blocked_until"] == retry_at
        assert 1.3 <= sum(ft.slept) <= 1.7  # waited until retryAfter (epoch ms), not 1500 s
        client.close()


def test_ws_418_raises_ip_banned_and_garbage_is_unexpected(tmp_path: Path) -> None:
    until = int(time.time() * 1000) + 600_000

    def answer(req: dict, n: int):
        if req["method"] == "openOrders.status":
            return "<html>oops</html>"
        return {
            "id": req["id"],
            "status": 418,
            "error": {
                "code": -1003,
                "msg": f"Way too much request weight used; IP banned until {until}.",
                "data": {"retryAfter": until, "serverTime": until - 600_000},
            },
        }

    with fake_ws(answer) as srv:
        client = _ws_client(srv["url"], tmp_path, FakeTime())
        with pytest.raises(errors.UnexpectedResponse, match="oops"):
            client.spot_ws.open_orders()
        with pytest.raises(errors.IpBanned) as info:
            client.spot_ws.all_orders("BTCUSDT")
        assert info.value.until_ms == until and fmt_ms(until) in str(info.value)
        client.close()


def test_ws_minus_1021_resyncs_and_retries_once(tmp_path: Path) -> None:
    def answer(req: dict, n: int) -> dict:
        if len([r for r in srv["requests"] if r["method"] == "allOrders"]) == 1:
            return {
                "id": req["id"],
                "status": 400,
                "error": {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."},
            }
        return ok(req, [{"orderId": 1}])

    with fake_ws(answer) as srv:
        client = _ws_client(srv["url"], tmp_path, FakeTime())
        assert client.spot_ws.all_orders("BTCUSDT") == [{"orderId": 1}]
        methods = [r["method"] for r in srv["requests"]]
        assert methods.count("time") == 2 * SYNC_SAMPLES  # first sync + the re-sync after -1021
        assert methods.count("allOrders") == 2
        client.close()


def test_ws_signs_after_waiting_for_the_budget(tmp_path: Path) -> None:
    """reserve() can sleep into the next window: the timestamp must be taken after that, not before."""
    ft = FakeTime()
    small = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 100, "count": 0}]
    with fake_ws(lambda req, n: {**ok(req, []), "rateLimits": small}) as srv:
        budget = WeightBudget("spot", "ws-host", tmp_path, now_ms=lambda: int(ft.t * 1000), sleep=ft.sleep)
        clock = ServerClock(lambda: int(ft.t * 1000), now=ft.time)
        creds = Credentials(api_key=Secret("WSKEY-abc"), signer=HmacSigner(Secret("WSSECRET-def")))
        ws = SpotWs(srv["url"], credentials=creds, budget=budget, clock=clock, sleep=ft.sleep)
        ws.all_orders("BTCUSDT")  # connect + sync + one call
        budget.reserve(90 - budget.snapshot()["windows"]["60000"][str(int(ft.t * 1000) // 60_000)])  # window full
        before = ft.t
        ws.all_orders("BTCUSDT")
        assert ft.t - before > 0.0 and ft.slept  # waited for the next window
        sent = srv["requests"][-1]["params"]["timestamp"]
        assert sent >= int(ft.t * 1000) - 1, (sent, ft.t)
        ws.close()

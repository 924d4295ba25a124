"""Signing: Binance's documented vectors (docs/binance-facts.md §Request signing), Ed25519/RSA round trips, keys."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from pipeline.binance.credentials import Credentials, MissingCredentials
from pipeline.binance.signing import (
    Ed25519Signer,
    HmacSigner,
    RsaSigner,
    encode_query,
    load_private_key,
    sign_rest,
    sign_ws,
    ws_payload,
)
from pipeline.settings import Secret, Settings

SPOT_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
UM_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"


def test_spot_rest_vector() -> None:
    params = [
        ("symbol", "LTCBTC"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", 1),
        ("price", "0.1"),
        ("recvWindow", 5000),
        ("timestamp", 1499827319559),
    ]
    query = encode_query(params)
    assert query == (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    )
    signed = sign_rest(query, HmacSigner(Secret(SPOT_SECRET)))
    assert signed == query + "&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_usdm_rest_vector() -> None:
    query = (
        "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000"
        "&timestamp=1591702613943"
    )
    assert HmacSigner(UM_SECRET).sign(query) == "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"


def test_rest_body_is_part_of_payload() -> None:
    signer = HmacSigner(SPOT_SECRET)
    signed = sign_rest("symbol=LTCBTC", signer, body="&timestamp=1")
    assert signed.endswith("signature=" + signer.sign("symbol=LTCBTC&timestamp=1"))


def test_ws_vector_sorted_and_unencoded() -> None:
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "price": "52000.00",
        "quantity": "0.01000000",
        "recvWindow": 100,
        "timestamp": 1645423376532,
        "apiKey": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
    }
    assert ws_payload(params) == (
        "apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A&price=52000.00&quantity=0.01000000"
        "&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
    )
    signed = sign_ws(params, HmacSigner(SPOT_SECRET))
    assert signed["signature"] == "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
    assert sign_ws({**params, "signature": "old"}, HmacSigner(SPOT_SECRET))["signature"] == signed["signature"]


def test_query_encoding_of_lists_bools_and_non_ascii() -> None:
    q = encode_query({"symbols": ["BTCUSDT", "ETHUSDT"], "omitZeroBalances": True, "x": "a b/ü", "none": None})
    assert q == "symbols=%5B%22BTCUSDT%22%2C%22ETHUSDT%22%5D&omitZeroBalances=true&x=a%20b%2F%C3%BC"
    assert ws_payload({"b": True, "a": ["X", "Y"]}) == 'a=["X","Y"]&b=true'


def _write_key(tmp_path: Path, key, password: bytes | None = None) -> Path:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    path = tmp_path / "key.pem"
    path.write_bytes(pem)
    return path


def test_ed25519_round_trip_and_rest_url_encoding(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    signer = load_private_key(_write_key(tmp_path, key))
    assert isinstance(signer, Ed25519Signer) and signer.key_type == "ed25519"
    payload = "symbol=BTCUSDT&recvWindow=5000&timestamp=1700000000000"
    sig = signer.sign(payload)
    key.public_key().verify(base64.b64decode(sig), payload.encode())
    signed = sign_rest(payload, signer)
    sent = signed.rsplit("&signature=", 1)[1]
    assert "+" not in sent and "/" not in sent and "=" not in sent  # URL-encoded in a query string
    assert unquote(sent) == sig
    ws = sign_ws({"timestamp": 1, "apiKey": "k"}, signer)
    key.public_key().verify(base64.b64decode(ws["signature"]), b"apiKey=k&timestamp=1")  # raw base64 in JSON


def test_rsa_round_trip_with_password(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = _write_key(tmp_path, key, b"pw-123")
    signer = load_private_key(path, Secret("pw-123"))
    assert isinstance(signer, RsaSigner)
    sig = signer.sign("a=1&timestamp=2")
    key.public_key().verify(base64.b64decode(sig), b"a=1&timestamp=2", padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(ValueError, match="BINANCE_PRIVATE_KEY_PASSWORD"):
        load_private_key(path)
    with pytest.raises(ValueError, match="not a readable PEM"):
        load_private_key(path, "wrong")


def test_unsupported_key_type(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    with pytest.raises(ValueError, match="Ed25519 or RSA"):
        load_private_key(_write_key(tmp_path, ec.generate_private_key(ec.SECP256R1())))


def test_credentials_from_settings(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    path = _write_key(tmp_path, key)
    s = Settings.from_env({"BINANCE_API_KEY": "K-123", "BINANCE_PRIVATE_KEY_FILE": str(path)})
    creds = Credentials.from_settings(s)
    assert creds.signer is not None and creds.signer.key_type == "ed25519" and creds.can_sign
    hmac_creds = Credentials.from_settings(Settings.from_env({"BINANCE_API_KEY": "K", "BINANCE_API_SECRET": "S"}))
    assert hmac_creds.signer.key_type == "hmac"
    public = Credentials.from_settings(Settings.from_env({}))
    assert not public.can_sign
    with pytest.raises(MissingCredentials, match=r"BINANCE_API_KEY.*BINANCE_API_SECRET.*BINANCE_PRIVATE_KEY_FILE"):
        public.require_signing("/api/v3/allOrders")
    only_key = Credentials.from_settings(Settings.from_env({"BINANCE_API_KEY": "K"}))
    with pytest.raises(MissingCredentials, match="no secret/private key"):
        only_key.require_signing("/api/v3/allOrders")

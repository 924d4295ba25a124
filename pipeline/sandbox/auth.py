"""Binance-style request validation: API key, signatures (HMAC / Ed25519 / RSA), timestamp window, params.

Error codes and messages follow docs/binance-facts.md §Error codes; the rules they enforce are in
docs/binance-facts.md §Request signing and docs/binance-facts.md §Timestamps and recvWindow. Where Binance does
not document a case the choice is marked UNCONFIRMED in a comment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from pipeline.binance.facts import RECV_WINDOW_MAX_MS
from pipeline.sandbox.config import SandboxConfig

DEFAULT_RECV_WINDOW = 5_000
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces
_INT_RE = re.compile(r"^-?[0-9]{1,20}$")
_RECV_RE = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,3})?$")


class ApiError(Exception):
    """A Binance error answer: HTTP status + {"code", "msg"} (+ optional extra headers / WS data)."""

    def __init__(
        self,
        http_status: int,
        code: int,
        msg: str,
        *,
        headers: dict[str, str] | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code} {msg}")
        self.http_status = http_status
        self.code = code
        self.msg = msg
        self.headers = headers or {}
        self.data = data

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


def mandatory(name: str) -> ApiError:
    return ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def illegal(name: str) -> ApiError:
    return ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.")


def invalid_value(name: str) -> ApiError:
    # -1130 INVALID_PARAMETER "Data sent for parameter '%s' is not valid." (SPOT-ERR); seen for limit > max
    # in practice (ccxt issue #9904).
    return ApiError(400, -1130, f"Data sent for parameter '{name}' is not valid.")


BAD_KEY_FORMAT = (401, -2014, "API-key format invalid.")
REJECTED_KEY = (401, -2015, "Invalid API-key, IP, or permissions for action.")
BAD_SIGNATURE = (400, -1022, "Signature for this request is not valid.")


def _load_public_key(pem: str | bytes | None) -> Any:
    if not pem:
        return None
    data = pem.encode() if isinstance(pem, str) else pem
    return serialization.load_pem_public_key(data)


@dataclass
class Verifier:
    """Checks the key, signature and timing of signed requests for ONE configured API key."""

    api_key: str
    key_type: str  # hmac | ed25519 | rsa
    secret: bytes | None
    public_key: Any

    @classmethod
    def from_config(cls, cfg: SandboxConfig) -> Verifier:
        kt = cfg.key_type
        pem = cfg.ed25519_public_key_pem if kt == "ed25519" else cfg.rsa_public_key_pem if kt == "rsa" else None
        pub = _load_public_key(pem)
        if kt == "ed25519" and not isinstance(pub, ed25519.Ed25519PublicKey):
            raise ValueError("ed25519_public_key_pem is not an Ed25519 public key")
        if kt == "rsa" and not isinstance(pub, rsa.RSAPublicKey):
            raise ValueError("rsa_public_key_pem is not an RSA public key")
        secret = (cfg.api_secret or "").encode() if kt == "hmac" else None
        if kt == "hmac" and not secret:
            raise ValueError("an HMAC key needs api_secret")
        return cls(cfg.api_key, kt, secret, pub)

    def check_key(self, key: str | None) -> None:
        if key is None or key == "":
            # Missing header on a key-protected endpoint. UNCONFIRMED whether Binance answers -2014 or -2015 here;
            # both are 401 and "check your key" for the user; -2014 is what spot has been observed to send.
            raise ApiError(*BAD_KEY_FORMAT)
        if not _KEY_RE.match(key):
            raise ApiError(*BAD_KEY_FORMAT)
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise ApiError(*REJECTED_KEY)

    def verify(self, payload: bytes, signature: str) -> None:
        """Raise -1022 unless ``signature`` (already URL-decoded) signs ``payload`` with this key."""
        if self.key_type == "hmac":
            want = hmac.new(self.secret or b"", payload, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(want, signature.lower()):
                raise ApiError(*BAD_SIGNATURE)
            return
        try:
            raw = base64.b64decode(signature, validate=True)
        except ValueError as exc:
            raise ApiError(*BAD_SIGNATURE) from exc
        try:
            if self.key_type == "ed25519":
                self.public_key.verify(raw, payload)
            else:
                self.public_key.verify(raw, payload, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature as exc:
            raise ApiError(*BAD_SIGNATURE) from exc


def check_timing(params: dict[str, str], now_ms: int) -> None:
    """timestamp / recvWindow rules (docs/binance-facts.md §Timestamps and recvWindow): -1102, -1100, -1131, -1021."""
    ts_text = params.get("timestamp")
    if ts_text is None or ts_text == "":
        raise mandatory("timestamp")
    if not _INT_RE.match(ts_text):
        raise illegal("timestamp")
    ts = int(ts_text)
    if ts > 10**14:  # microseconds (spot accepts both since 2025)
        ts //= 1000
    recv_text = params.get("recvWindow")
    recv = float(DEFAULT_RECV_WINDOW)
    if recv_text is not None:
        if not _RECV_RE.match(recv_text):
            raise ApiError(
                400,
                -1100,
                "Illegal characters found in parameter 'recvWindow'; legal range is '^\\d{1,12}(\\.\\d{1,3})?$'.",
            )
        recv = float(recv_text)
        if recv > RECV_WINDOW_MAX_MS:
            raise ApiError(400, -1131, "recvWindow must be less than 60000")
    if ts >= now_ms + 1000:
        raise ApiError(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if now_ms - ts > recv:
        raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")


def parse_query(raw: str) -> list[tuple[str, str]]:
    """Form-decode ``a=1&b=2`` keeping order and duplicates (Binance rejects duplicates with -1101)."""
    out = []
    if not raw:
        return out
    for part in raw.split("&"):
        if part == "":
            continue
        name, _, value = part.partition("=")
        out.append((unquote_plus(name), unquote_plus(value)))
    return out


def rest_signed_payload(query: str, body: str) -> tuple[bytes | None, str | None]:
    """Split totalParams (query string + body, concatenated WITHOUT separator) into (signed bytes, signature).

    Returns (None, None) when no signature was sent and (None, sig) when ``signature`` is not the last parameter
    of its part (Binance: "signature must be the last parameter"), which then fails verification (-1022).
    """
    for where, text in (("query", query), ("body", body)):
        parts = text.split("&") if text else []
        hits = [i for i, p in enumerate(parts) if p.startswith("signature=")]
        if not hits:
            continue
        sig = unquote_plus(parts[hits[-1]][len("signature=") :])
        if len(hits) > 1 or hits[0] != len(parts) - 1 or (where == "query" and body and "signature=" in body):
            return None, sig
        rest = "&".join(parts[:-1])
        payload = rest + body if where == "query" else query + rest
        return payload.encode("utf-8"), sig
    return None, None


def ws_payload(params: dict[str, Any]) -> bytes:
    """WS API signing payload: every param except ``signature``, sorted by name, ``name=value`` joined by ``&``,
    no percent-encoding (docs/binance-facts.md §Request signing)."""
    parts = []
    for name in sorted(params):
        if name == "signature":
            continue
        parts.append(f"{name}={ws_value(params[name])}")
    return "&".join(parts).encode("utf-8")


def ws_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)

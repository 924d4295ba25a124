"""Request signing for Binance: HMAC-SHA256 (hex), Ed25519 and RSA PKCS#1 v1.5 SHA-256 (base64).

Two payload rules (docs/binance-facts.md §Request signing):

* REST: the payload is the query string exactly as sent (+ the body, no separator), and ``signature`` must be the
  LAST parameter. A base64 signature is URL-encoded there (it can contain ``+ / =``).
* WS API: every param except ``signature``, sorted by name, ``name=value`` joined by ``&`` with NO percent
  encoding; the signature goes into ``params`` unencoded.

Signers never show their key material in ``repr``/``str`` and refuse pickling.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from pipeline.settings import Secret


class Signer:
    """Base: ``sign(payload) -> signature text`` (hex for HMAC, base64 for key pairs)."""

    key_type = "none"

    def sign(self, payload: str | bytes) -> str:
        raise NotImplementedError

    def redactions(self) -> tuple[str, ...]:
        """Texts to scrub from anything we print (a server could echo them back)."""
        return ()

    @property
    def url_encode(self) -> bool:
        """Base64 signatures must be percent-encoded inside a query string; hex needs nothing."""
        return self.key_type != "hmac"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key_type={self.key_type!r})"

    __str__ = __repr__

    def __reduce__(self):  # a signer holds key material: never copy it into subprocess args or storage
        raise TypeError("signers cannot be pickled")


def _bytes(payload: str | bytes) -> bytes:
    return payload.encode("utf-8") if isinstance(payload, str) else payload


class HmacSigner(Signer):
    key_type = "hmac"

    def __init__(self, secret: Secret | str) -> None:
        self._secret = secret if isinstance(secret, Secret) else Secret(secret)

    def redactions(self) -> tuple[str, ...]:
        return (self._secret.reveal(),)

    def sign(self, payload: str | bytes) -> str:
        return hmac.new(self._secret.reveal().encode("utf-8"), _bytes(payload), hashlib.sha256).hexdigest()


class Ed25519Signer(Signer):
    key_type = "ed25519"

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self._key = key

    def sign(self, payload: str | bytes) -> str:
        return base64.b64encode(self._key.sign(_bytes(payload))).decode("ascii")


class RsaSigner(Signer):
    key_type = "rsa"

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key

    def sign(self, payload: str | bytes) -> str:
        sig = self._key.sign(_bytes(payload), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(sig).decode("ascii")


def load_private_key(path: str | Path, password: Secret | str | None = None) -> Signer:
    """Read a PEM (PKCS#8) private key and return the matching signer (Ed25519 or RSA, detected)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read BINANCE_PRIVATE_KEY_FILE {path}: {exc.strerror}") from None
    pw = password.reveal() if isinstance(password, Secret) else password
    try:
        key = serialization.load_pem_private_key(data, password=pw.encode("utf-8") if pw else None)
    except TypeError:
        raise ValueError(
            f"the private key {path} is encrypted: set BINANCE_PRIVATE_KEY_PASSWORD "
            "(or it is not encrypted and a password was given)"
        ) from None
    except ValueError:
        # the library's message can quote parts of the file: keep ours generic
        raise ValueError(
            f"{path} is not a readable PEM private key (wrong password, or not PKCS#8 PEM). Binance "
            "API keys of type Ed25519 or RSA need their PRIVATE key here."
        ) from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Ed25519Signer(key)
    if isinstance(key, rsa.RSAPrivateKey):
        return RsaSigner(key)
    raise ValueError(
        f"{path} holds a {type(key).__name__}; Binance accepts Ed25519 or RSA keys (or HMAC via BINANCE_API_SECRET)"
    )


# ---------------------------------------------------------------------------------------------------------------
# payloads


def param_text(value: Any) -> str:
    """How a parameter value is written on the wire (booleans lower-case, lists/dicts as compact JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        return json.dumps(list(value) if isinstance(value, tuple) else value, separators=(",", ":"))
    return str(value)


def encode_query(params: Iterable[tuple[str, Any]] | Mapping[str, Any]) -> str:
    """``name=value&...`` in the given order, values percent-encoded as UTF-8 (Binance: encode before signing)."""
    items = params.items() if isinstance(params, Mapping) else params
    return "&".join(f"{quote(str(k), safe='')}={quote(param_text(v), safe='-_.~')}" for k, v in items if v is not None)


def sign_rest(query: str, signer: Signer, body: str = "") -> str:
    """Return ``query`` with ``&signature=...`` appended (signature over query + body, signature last)."""
    sig = signer.sign(query + body)
    if signer.url_encode:
        sig = quote(sig, safe="")
    return f"{query}&signature={sig}" if query else f"signature={sig}"


def ws_payload(params: Mapping[str, Any]) -> str:
    """WS API payload: params except ``signature``, sorted by name, ``name=value`` joined by ``&``, unencoded."""
    return "&".join(f"{k}={param_text(params[k])}" for k in sorted(params) if k != "signature")


def sign_ws(params: Mapping[str, Any], signer: Signer) -> dict[str, Any]:
    """Return a copy of ``params`` with ``signature`` added (raw: hex or base64, JSON needs no URL encoding)."""
    out = {k: v for k, v in params.items() if v is not None and k != "signature"}
    out["signature"] = signer.sign(ws_payload(out))
    return out

"""pytest helpers: start a sandbox on an ephemeral loopback port, and the settings that point orderlake at it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.server import SandboxExchange
from pipeline.settings import Settings
from pipeline.times import now_ms


@contextmanager
def start_sandbox(**overrides: Any) -> Iterator[SandboxExchange]:
    """``with start_sandbox(time_scale=60, history_days=10) as sx: ...`` (any SandboxConfig field)."""
    cfg = SandboxConfig().with_overrides(**overrides)
    with SandboxExchange(cfg, host="127.0.0.1", port=0) as sx:
        yield sx


def sandbox_env(sx: SandboxExchange, data_dir: str | Path) -> dict[str, str]:
    """Variables for ``Settings.from_env`` pointing every Binance surface at ``sx`` (also for child processes)."""
    env = {
        "BINANCE_API_KEY": sx.cfg.api_key,
        "BINANCE_SPOT_URL": sx.url,
        "BINANCE_WS_API_URL": sx.ws_url,
        "BINANCE_FUTURES_URL": sx.url,
        "BINANCE_PAPI_URL": sx.url,
        "ORDERLAKE_DATA_DIR": str(data_dir),
        "ORDERLAKE_ALLOW_HTTP_LOOPBACK": "1",
        "ORDERLAKE_EXPORT_MONTHLY_LIMIT": str(sx.cfg.export_quota),
    }
    if sx.cfg.key_type == "hmac" and sx.cfg.api_secret:
        env["BINANCE_API_SECRET"] = sx.cfg.api_secret
    return env


def sandbox_settings(sx: SandboxExchange, data_dir: str | Path, budget_dir: str | Path) -> Settings:
    """Settings pointing every Binance surface at ``sx``, with pacing scaled like the sandbox and a private budget."""
    return Settings.from_env(sandbox_env(sx, data_dir)).replace(time_scale=sx.cfg.time_scale, budget_dir=budget_dir)


class SignedClient:
    """Minimal signed REST caller for tests of the sandbox itself (independent of pipeline.binance).

    ``secret`` signs with HMAC-SHA256 (hex); ``private_key`` (cryptography Ed25519/RSA object) signs with
    base64, URL-encoded, as Binance documents.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = "sandbox-api-key",
        secret: str | None = "sandbox-api-secret",
        private_key: Any = None,
    ) -> None:
        import requests

        self.base_url = base_url
        self.api_key = api_key
        self.secret = secret
        self.private_key = private_key
        self.session = requests.Session()

    def sign(self, payload: str) -> str:
        import base64
        import hashlib
        import hmac
        from urllib.parse import quote

        if self.private_key is None:
            return hmac.new((self.secret or "").encode(), payload.encode(), hashlib.sha256).hexdigest()
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ed25519, padding

        if isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            raw = self.private_key.sign(payload.encode())
        else:
            raw = self.private_key.sign(payload.encode(), padding.PKCS1v15(), hashes.SHA256())
        return quote(base64.b64encode(raw).decode(), safe="")

    def query(self, params: dict[str, Any] | None = None, *, timestamp: int | None = None, signed: bool = True) -> str:
        from urllib.parse import urlencode

        items = dict(params or {})
        if signed and "timestamp" not in items:
            items["timestamp"] = timestamp if timestamp is not None else now_ms()
        q = urlencode(items)
        if signed:
            q += "&signature=" + self.sign(q)
        return q

    def get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        signed: bool = True,
        raw_query: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Any:
        q = raw_query if raw_query is not None else self.query(params, signed=signed)
        hdrs = {"X-MBX-APIKEY": self.api_key} if self.api_key is not None else {}
        hdrs.update(headers or {})
        return self.session.get(
            f"{self.base_url}{path}?{q}" if q else f"{self.base_url}{path}", headers=hdrs, timeout=timeout
        )

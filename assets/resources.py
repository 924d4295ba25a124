"""Dagster resources: typed configuration around the Dagster-free client and storage code.

Secrets are ``EnvVar`` references, resolved when a run starts, so their values never reach run config,
the UI or Dagster's storage.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from pipeline.binance import BinanceClient
from pipeline.config import PRODUCTION_URLS, Secret, Settings


def _env_or(name: str, default: str | None) -> str | dg.EnvVar | None:
    """An ``EnvVar`` when the variable is set (value resolved at run start), else ``default``."""
    return dg.EnvVar(name) if os.environ.get(name) else default


class BinanceResource(dg.ConfigurableResource):
    """Credentials and endpoints of one Binance account; builds one client per run."""

    api_key: str | None = None
    api_secret: str | None = None
    private_key_file: str | None = None
    spot_url: str = PRODUCTION_URLS["spot"]
    ws_api_url: str = PRODUCTION_URLS["ws_api"]
    futures_url: str = PRODUCTION_URLS["futures"]
    papi_url: str = PRODUCTION_URLS["papi"]
    spot_transport: str = "rest"

    _client: BinanceClient | None = PrivateAttr(default=None)

    @classmethod
    def from_env(cls) -> BinanceResource:
        return cls(
            api_key=_env_or("BINANCE_API_KEY", None),
            api_secret=_env_or("BINANCE_API_SECRET", None),
            private_key_file=_env_or("BINANCE_PRIVATE_KEY_FILE", None),
            spot_url=_env_or("BINANCE_SPOT_URL", PRODUCTION_URLS["spot"]),
            ws_api_url=_env_or("BINANCE_WS_API_URL", PRODUCTION_URLS["ws_api"]),
            futures_url=_env_or("BINANCE_FUTURES_URL", PRODUCTION_URLS["futures"]),
            papi_url=_env_or("BINANCE_PAPI_URL", PRODUCTION_URLS["papi"]),
            spot_transport=_env_or("BINANCE_SPOT_TRANSPORT", "rest"),
        )

    def settings(self) -> Settings:
        return Settings(
            api_key=Secret(self.api_key) if self.api_key else None,
            api_secret=Secret(self.api_secret) if self.api_secret else None,
            private_key_file=Path(self.private_key_file) if self.private_key_file else None,
            spot_url=self.spot_url.rstrip("/"),
            ws_api_url=self.ws_api_url,
            futures_url=self.futures_url.rstrip("/"),
            papi_url=self.papi_url.rstrip("/"),
            spot_transport=self.spot_transport,
        )

    @property
    def client(self) -> BinanceClient:
        if self._client is None:
            settings = self.settings()
            self._client = BinanceClient.from_settings(settings)
        return self._client

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class LakeResource(dg.ConfigurableResource):
    """Where the lake, raw files, state and catalog live, and which account they belong to."""

    data_dir: str = "data"
    account: str = "main"
    export_monthly_limit: int = 10
    allow_http_loopback: bool = False

    @classmethod
    def from_env(cls) -> LakeResource:
        return cls(
            data_dir=os.environ.get("ORDERLAKE_DATA_DIR", "data"),
            account=os.environ.get("ORDERLAKE_ACCOUNT", "main"),
            export_monthly_limit=int(os.environ.get("ORDERLAKE_EXPORT_MONTHLY_LIMIT", "10")),
            allow_http_loopback=os.environ.get("ORDERLAKE_ALLOW_HTTP_LOOPBACK", "") == "1",
        )

    @property
    def path(self) -> Path:
        return Path(self.data_dir).resolve()

"""Dagster resources: typed configuration around the Dagster-free client and storage code.

Secrets are ``EnvVar`` references, resolved when a run starts, so their values never reach run config, the UI
or Dagster's storage. Every setting is read from the environment variables the README documents.
"""

import os
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from pipeline.binance import BinanceClient
from pipeline.config import PRODUCTION_URLS, Secret, Settings
from pipeline.exports.chain import ExportChain
from pipeline.exports.ledger import ExportLedger
from pipeline.spot.discovery import ProbeMode

PROBE_MODES: dict[str, ProbeMode] = {"auto": "auto", "full": True, "targeted": "targeted", "off": False}


def _env_or(name: str, default: str | None) -> str | dg.EnvVar | None:
    """An ``EnvVar`` when the variable is set (its value is resolved at run start, never stored), else ``default``."""
    return dg.EnvVar(name) if os.environ.get(name, "").strip() else default


class BinanceResource(dg.ConfigurableResource):
    """Credentials and endpoints of one Binance account; builds one client per run (one pooled session)."""

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
    def from_env(cls) -> "BinanceResource":
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
        transport = self.spot_transport.strip().lower()
        if transport not in ("rest", "ws"):
            raise ValueError(f"BINANCE_SPOT_TRANSPORT must be 'rest' or 'ws', not {self.spot_transport!r}")
        return Settings(
            api_key=Secret(self.api_key) if self.api_key else None,
            api_secret=Secret(self.api_secret) if self.api_secret else None,
            private_key_file=Path(self.private_key_file) if self.private_key_file else None,
            spot_url=self.spot_url.rstrip("/"),
            ws_api_url=self.ws_api_url,
            futures_url=self.futures_url.rstrip("/"),
            papi_url=self.papi_url.rstrip("/"),
            spot_transport=transport,
        )

    @property
    def transport(self) -> str:
        return self.settings().spot_transport

    @property
    def client(self) -> BinanceClient:
        if self._client is None:
            self._client = BinanceClient.from_settings(self.settings())
        return self._client

    def spot_weight_spent(self) -> int:
        """Weight this run's client has spent on the spot limiter (REST and WS API share it)."""
        return self.client.weight_used()["spot"]

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class LakeResource(dg.ConfigurableResource):
    """Where the lake, raw files, state and catalog live, and which account they belong to."""

    data_dir: str = "data"
    account: str = "main"

    @classmethod
    def from_env(cls) -> "LakeResource":
        return cls(
            data_dir=os.environ.get("ORDERLAKE_DATA_DIR", "").strip() or "data",
            account=os.environ.get("ORDERLAKE_ACCOUNT", "").strip() or "main",
        )

    @property
    def path(self) -> Path:
        return Path(self.data_dir).resolve()


class SpotResource(dg.ConfigurableResource):
    """How spot symbols are discovered: the explicit list (the only way to reach delisted pairs) and the probe."""

    symbols: str = ""  # comma-separated, ORDERLAKE_SPOT_SYMBOLS
    probe: str = "auto"  # auto | full | targeted | off, ORDERLAKE_SPOT_PROBE

    @classmethod
    def from_env(cls) -> "SpotResource":
        return cls(
            symbols=os.environ.get("ORDERLAKE_SPOT_SYMBOLS", ""),
            probe=os.environ.get("ORDERLAKE_SPOT_PROBE", "").strip().lower() or "auto",
        )

    @property
    def explicit(self) -> list[str]:
        return sorted({s.strip().upper() for s in self.symbols.split(",") if s.strip()})

    @property
    def probe_mode(self) -> ProbeMode:
        try:
            return PROBE_MODES[self.probe]
        except KeyError:
            choices = ", ".join(PROBE_MODES)
            raise ValueError(f"ORDERLAKE_SPOT_PROBE must be one of {choices}, not {self.probe!r}") from None


class ExportsResource(dg.ConfigurableResource):
    """The export chain of one account: the client, the ledger under state/, quota and pacing settings."""

    binance: BinanceResource
    lake: LakeResource
    monthly_limit: int = 10  # ORDERLAKE_EXPORT_MONTHLY_LIMIT: ids per month per endpoint, shared with the website
    allow_http_loopback: bool = False  # ORDERLAKE_ALLOW_HTTP_LOOPBACK=1: the sandbox serves files over http
    time_scale: float = 1.0  # ORDERLAKE_TIME_SCALE: the sandbox's --time-scale; pacing durations are divided by it

    @classmethod
    def from_env(cls, binance: BinanceResource, lake: LakeResource) -> "ExportsResource":
        return cls(
            binance=binance,
            lake=lake,
            monthly_limit=int(os.environ.get("ORDERLAKE_EXPORT_MONTHLY_LIMIT", "").strip() or 10),
            allow_http_loopback=os.environ.get("ORDERLAKE_ALLOW_HTTP_LOOPBACK", "").strip() == "1",
            time_scale=float(os.environ.get("ORDERLAKE_TIME_SCALE", "").strip() or 1.0),
        )

    def chain(self) -> ExportChain:
        if self.time_scale <= 0:
            raise ValueError(f"ORDERLAKE_TIME_SCALE must be > 0, not {self.time_scale}")
        data_dir = self.lake.path
        return ExportChain(
            self.binance.client,
            ExportLedger(data_dir),
            data_dir=data_dir,
            account=self.lake.account,
            monthly_limit=self.monthly_limit,
            allow_http_loopback=self.allow_http_loopback,
            time_scale=1.0 / self.time_scale,
        )

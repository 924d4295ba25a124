"""Settings read from the environment.

Secrets are wrapped in :class:`Secret` so that a stray ``repr``/``str``/log call can never print them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

PRODUCTION_URLS = {
    "spot": "https://api.binance.com",
    "ws_api": "wss://ws-api.binance.com:443/ws-api/v3",
    "futures": "https://fapi.binance.com",
    "papi": "https://papi.binance.com",
}
DEFAULT_START_DATE = date(2024, 1, 1)


class Secret:
    """A string that refuses to show itself; call :meth:`reveal` at the one place that needs it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):  # pickling would copy the secret into Dagster storage or subprocess args
        raise TypeError("Secret values cannot be pickled")


@dataclass(frozen=True)
class Settings:
    """Everything orderlake reads from the environment, documented in the README."""

    api_key: Secret | None = None
    api_secret: Secret | None = None
    private_key_file: Path | None = None
    spot_url: str = PRODUCTION_URLS["spot"]
    ws_api_url: str = PRODUCTION_URLS["ws_api"]
    futures_url: str = PRODUCTION_URLS["futures"]
    papi_url: str = PRODUCTION_URLS["papi"]
    data_dir: Path = Path("data")
    account: str = "main"
    start_date: date = DEFAULT_START_DATE
    spot_symbols: tuple[str, ...] = field(default_factory=tuple)
    spot_transport: str = "rest"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        transport = (get("BINANCE_SPOT_TRANSPORT") or "rest").lower()
        if transport not in ("rest", "ws"):
            raise ValueError(f"BINANCE_SPOT_TRANSPORT must be 'rest' or 'ws', not {transport!r}")
        key, secret, pk = get("BINANCE_API_KEY"), get("BINANCE_API_SECRET"), get("BINANCE_PRIVATE_KEY_FILE")
        symbols = tuple(s.strip().upper() for s in (get("ORDERLAKE_SPOT_SYMBOLS") or "").split(",") if s.strip())
        start = get("ORDERLAKE_START_DATE")
        return cls(
            api_key=Secret(key) if key else None,
            api_secret=Secret(secret) if secret else None,
            private_key_file=Path(pk) if pk else None,
            spot_url=(get("BINANCE_SPOT_URL") or PRODUCTION_URLS["spot"]).rstrip("/"),
            ws_api_url=get("BINANCE_WS_API_URL") or PRODUCTION_URLS["ws_api"],
            futures_url=(get("BINANCE_FUTURES_URL") or PRODUCTION_URLS["futures"]).rstrip("/"),
            papi_url=(get("BINANCE_PAPI_URL") or PRODUCTION_URLS["papi"]).rstrip("/"),
            data_dir=Path(get("ORDERLAKE_DATA_DIR") or "data"),
            account=get("ORDERLAKE_ACCOUNT") or "main",
            start_date=date.fromisoformat(start) if start else DEFAULT_START_DATE,
            spot_symbols=symbols,
            spot_transport=transport,
        )

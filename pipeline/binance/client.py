"""BinanceClient: one object wiring credentials, clocks, weight budgets and the REST/WS surfaces together."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from pipeline.binance import errors
from pipeline.binance.budget import WeightBudget
from pipeline.binance.budget_store import open_store
from pipeline.binance.clock import ServerClock
from pipeline.binance.credentials import Credentials
from pipeline.binance.exports import ExportEndpoint
from pipeline.binance.facts import FUTURES_EXCHANGE_INFO_WEIGHT, RECV_WINDOW_MAX_MS, SPOT_WEIGHTS
from pipeline.binance.futures import PapiRest, UsdmRest
from pipeline.binance.spot import SpotApi, SpotRest
from pipeline.binance.transport import RestTransport, RetryPolicy, make_session
from pipeline.binance.ws import SpotWs
from pipeline.settings import PRODUCTION_URLS, Settings

log = logging.getLogger(__name__)

# Binance documents no error for an exhausted export quota (docs/binance-facts.md §Error codes): any 4xx on a
# create call whose text mentions month/limit/quota is treated as "quota exhausted" (429/418 are handled before
# this check).
_QUOTA_RE = re.compile(r"month|limit|quota", re.IGNORECASE)


class BinanceClient:
    """Read-only Binance client for the order-history backfill: one object per account and process, holding the
    pooled session, the clocks and the machine-wide weight budgets that every surface (REST, WS API) shares."""

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        budget_dir: str | Path,
        budget_url: str | None = None,
        egress: str | None = None,
        spot_url: str = PRODUCTION_URLS["spot"],
        ws_api_url: str = PRODUCTION_URLS["ws_api"],
        futures_url: str = PRODUCTION_URLS["futures"],
        papi_url: str = PRODUCTION_URLS["papi"],
        timeout: float = 10.0,
        recv_window: int = 5000,
        weight_fraction: float = 0.9,
        max_ban_wait: float = 0.0,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < recv_window <= RECV_WINDOW_MAX_MS:
            raise ValueError(f"recv_window must be in (0, {RECV_WINDOW_MAX_MS}] ms (Binance's maximum)")
        self.credentials = credentials or Credentials()
        self.retry = retry or RetryPolicy(max_ban_wait=max_ban_wait)
        self.budget_dir = Path(budget_dir)
        self.budget_store = open_store(budget_url, self.budget_dir)
        self._session = session or make_session()
        self._sleep = sleep
        self._timeout, self._recv_window = timeout, recv_window
        self.urls = {
            "spot": spot_url.rstrip("/"),
            "ws_api": ws_api_url,
            "futures": futures_url.rstrip("/"),
            "papi": papi_url.rstrip("/"),
        }
        self.clocks = {
            "spot": ServerClock(lambda: self.spot.server_time(), now=now, name="spot"),
            "futures": ServerClock(lambda: self.futures.server_time(), now=now, name="futures"),
        }
        self.clocks["papi"] = self.clocks["futures"]  # PM has no time endpoint: same Binance clock, same offset

        def budget(group: str) -> WeightBudget:
            clock = self.clocks[group]
            return WeightBudget(
                group,
                urlsplit(self.urls[group]).netloc,
                self.budget_store,
                egress=egress or "",
                fraction=weight_fraction,
                now_ms=clock.now_ms,
                clock_error_ms=lambda: clock.uncertainty_ms,
                sleep=sleep,
                max_ban_wait=self.retry.max_ban_wait,
            )

        # The spot WS API shares the spot REST IP budget (docs/binance-facts.md §Rate limits): one limiter object.
        self.budgets = {g: budget(g) for g in ("spot", "futures", "papi")}
        limits_paths = {
            "spot": ("/api/v3/exchangeInfo", SPOT_WEIGHTS["exchange_info"]),
            "futures": ("/fapi/v1/exchangeInfo", FUTURES_EXCHANGE_INFO_WEIGHT),
            "papi": None,
        }
        self.transports = {
            g: RestTransport(
                self.urls[g],
                g,
                credentials=self.credentials,
                budget=self.budgets[g],
                clock=self.clocks[g],
                session=self._session,
                timeout=timeout,
                recv_window=recv_window,
                retry=self.retry,
                sleep=sleep,
                limits_path=limits_paths[g],
            )
            for g in ("spot", "futures", "papi")
        }
        self.spot = SpotRest(self.transports["spot"])
        self.futures = UsdmRest(self.transports["futures"])
        self.papi = PapiRest(self.transports["papi"])
        self._spot_ws: SpotWs | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> BinanceClient:
        """The client of ``settings`` (credentials, endpoints, budget dir); ``kw`` overrides the rest."""
        return cls(
            Credentials.from_settings(settings),
            spot_url=settings.spot_url,
            ws_api_url=settings.ws_api_url,
            futures_url=settings.futures_url,
            papi_url=settings.papi_url,
            **{
                "budget_dir": settings.budget_dir,
                "budget_url": settings.budget_url.reveal() if settings.budget_url else None,
                "egress": settings.egress_ip,
                **kw,
            },
        )

    def __repr__(self) -> str:
        return f"BinanceClient(spot_url={self.urls['spot']!r}, credentials={self.credentials!r})"

    __str__ = __repr__

    # -- surfaces -----------------------------------------------------------------------------------------------
    @property
    def spot_ws(self) -> SpotWs:
        """The WS API client (connects on first use)."""
        if self._spot_ws is None:
            self._spot_ws = SpotWs(
                self.urls["ws_api"],
                credentials=self.credentials,
                budget=self.budgets["spot"],
                timeout=self._timeout,
                recv_window=self._recv_window,
                retry=self.retry,
                sleep=self._sleep,
            )
        return self._spot_ws

    def spot_api(self, transport: str = "rest") -> SpotApi:
        """``"rest"`` -> :attr:`spot`, ``"ws"`` -> :attr:`spot_ws` (same methods, same return shapes)."""
        if transport == "rest":
            return self.spot
        if transport == "ws":
            return self.spot_ws
        raise ValueError(f"spot transport must be 'rest' or 'ws', not {transport!r}")

    def weight_used(self) -> dict[str, int]:
        """Weight THIS client spent per limiter group (requests sent, also failed ones: Binance counts them)."""
        return {g: b.spent for g, b in self.budgets.items()}

    # -- exports ------------------------------------------------------------------------------------------------
    def create_export(self, endpoint: ExportEndpoint, start_time_ms: int, end_time_ms: int) -> dict:
        """Ask for a download id. NON-IDEMPOTENT (spends monthly quota): never retried, see transport.py."""
        path = endpoint.create_path
        try:
            return self.transports[endpoint.api].call(
                path,
                {"startTime": int(start_time_ms), "endTime": int(end_time_ms)},
                weight=endpoint.create_weight,
                signed=True,
                idempotent=False,
            )
        except (
            errors.RateLimited,
            errors.IpBanned,
            errors.OutcomeUnknown,
            errors.TimestampRejected,
            errors.InvalidSignature,
            errors.ApiKeyRejected,
        ):
            raise
        except errors.BinanceError as exc:
            status = exc.http_status
            if status is not None and 400 <= status < 500 and exc.code != -1003 and _QUOTA_RE.search(exc.msg or ""):
                raise errors.ExportQuotaExhausted(
                    f"{path}: Binance refused a new {endpoint.market}/{endpoint.kind} export (HTTP {status}, code "
                    f"{exc.code}: {exc.msg}). Read as: the monthly export quota is used up (the website's download "
                    "page shares it). Do not ask again this month; the quota resets next month.",
                    code=exc.code,
                    http_status=status,
                    endpoint=path,
                    msg=exc.msg,
                ) from None
            raise

    def export_link(self, endpoint: ExportEndpoint, download_id: str) -> dict:
        """Status / link of a download id (idempotent; retried)."""
        return self.transports[endpoint.api].call(
            endpoint.link_path, {"downloadId": str(download_id)}, weight=endpoint.link_weight, signed=True
        )

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def close(self) -> None:
        if self._spot_ws is not None:
            self._spot_ws.close()
        self._session.close()

    def __enter__(self) -> BinanceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

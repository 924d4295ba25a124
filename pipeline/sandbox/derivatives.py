"""The sandbox's USDⓈ-M / Portfolio-Margin endpoints and the asynchronous export (create, link, file), as a mixin of
:class:`pipeline.sandbox.core.Exchange`, whose state they share."""

from __future__ import annotations

import random
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipeline.binance import facts
from pipeline.sandbox import export_dialects, fill_exports
from pipeline.sandbox.auth import ApiError, invalid_value
from pipeline.sandbox.books import Account, fmt_units
from pipeline.sandbox.clock import SandboxClock
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.limits import WeightLimiter
from pipeline.sandbox.universe import FUTURES_SYMBOLS
from pipeline.times import DAY_MS, month_of

if TYPE_CHECKING:
    from pipeline.sandbox.core import Params, Stats

EXPORT_MAX_SPAN_MS = facts.EXPORT_MAX_SPAN_DAYS * DAY_MS


@dataclass
class Export:
    download_id: str
    market: str  # usdm | pm_um
    start_ms: int
    end_ms: int
    created_ms: int
    ready_ms: int
    token: str
    expires_ms: int = -1
    url_signature: str = field(default_factory=lambda: secrets.token_hex(32))
    file_name: str | None = None
    data: bytes | None = None
    market_ms: int = 0  # the market clock when the export was requested: the file shows the account then
    kind: str = "order"  # order | trade | income


class DerivativesApi:
    """Futures exchangeInfo, export create / link / file; the state is the Exchange's."""

    cfg: SandboxConfig
    account: Account
    limiter: WeightLimiter
    lock: threading.RLock
    stats_data: Stats
    id_rng: random.Random
    exports: dict[str, Export]
    files: dict[str, Export]
    quota_used: dict[tuple[str, str], int]
    exports_held: bool
    clock: SandboxClock

    orders_as_of: Callable[[str, int], list[dict]]  # pipeline.sandbox.futures_rest.FuturesRestApi
    ledger: Callable[[str], Any]  # pipeline.sandbox.futures_rest.FuturesRestApi: trades and income of a market

    # -------------------------------------------------------------------------------------------------------
    # futures

    def futures_exchange_info(self, p: Params) -> dict:
        symbols = []
        for sym, _price, pd, qd in FUTURES_SYMBOLS:
            base = sym[:-4]
            symbols.append(
                {
                    "symbol": sym,
                    "pair": sym,
                    "contractType": "PERPETUAL",
                    "deliveryDate": 4133404800000,
                    "onboardDate": 1569398400000,
                    "status": "TRADING",
                    "baseAsset": base,
                    "quoteAsset": "USDT",
                    "marginAsset": "USDT",
                    "pricePrecision": pd,
                    "quantityPrecision": qd,
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "underlyingType": "COIN",
                    "settlePlan": 0,
                    "triggerProtect": "0.0500",
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": fmt_units(1, pd),
                            "maxPrice": "4529764",
                            "tickSize": fmt_units(1, pd),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": fmt_units(1, qd),
                            "maxQty": "1000",
                            "stepSize": fmt_units(1, qd),
                        },
                        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                    ],
                    "orderTypes": [
                        "LIMIT",
                        "MARKET",
                        "STOP",
                        "STOP_MARKET",
                        "TAKE_PROFIT",
                        "TAKE_PROFIT_MARKET",
                        "TRAILING_STOP_MARKET",
                    ],
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
                }
            )
        return {
            "timezone": "UTC",
            "serverTime": self.clock.wire(),
            "futuresType": "U_MARGINED",
            "rateLimits": [
                *self.limiter.rate_limits("futures"),
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            ],
            "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": symbols,
        }

    # -------------------------------------------------------------------------------------------------------
    # exports

    def routes(self, prefix: str) -> list[tuple[str, Callable, bool]]:
        """(path, handler, is the create call) of the order, trade and income exports of one futures surface."""
        market = "usdm" if prefix.startswith("/fapi") else "pm_um"
        out: list[tuple[str, Callable, bool]] = []
        for kind in ("order", "trade", "income"):
            out.append((f"{prefix}/{kind}/asyn", lambda p, k=kind: self.export_create(p, market, k), True))
            out.append((f"{prefix}/{kind}/asyn/id", lambda p, k=kind: self.export_link(p, market, k), False))
        return out

    def export_create(self, p: Params, market: str, kind: str = "order") -> dict:
        start = p.int("startTime", required=True)
        end = p.int("endTime", required=True)
        assert start is not None and end is not None
        if start > end:
            raise ApiError(400, -1023, "Start time is greater than end time.")
        if end - start > EXPORT_MAX_SPAN_MS:
            # UNCONFIRMED code/message: Binance only documents "must not exceed 1 year"; -1127 is the
            # "lookup interval is too big" code.
            raise ApiError(400, -1127, "More than 365 days between startTime and endTime.")
        now = self.clock.wire()
        month = month_of(now)
        scope = market if kind == "order" else f"{market}/{kind}"
        quota = {"trade": self.cfg.export_trade_quota, "income": self.cfg.export_income_quota}.get(
            kind, self.cfg.export_quota
        )
        with self.lock:
            used = self.quota_used.get((scope, month), 0)
            if used >= quota:
                self.stats_data.export_quota_rejections += 1
                # UNCONFIRMED: Binance documents no code/message for an exhausted monthly quota. HTTP 400, a code
                # from no documented table (-4999), and a message that names the monthly limit.
                raise ApiError(
                    400,
                    -4999,
                    f"The number of download requests has reached the monthly limit "
                    f"({quota} per month) for this endpoint. Please try "
                    "again next month.",
                )
            self.quota_used[(scope, month)] = used + 1
            download_id = str(self.id_rng.randint(10**18, 9 * 10**18))
            processing_ms = int(self.cfg.export_processing_seconds * 1000 / self.cfg.time_scale)
            exp = Export(download_id, market, start, end, now, now + processing_ms, secrets.token_hex(16))
            exp.market_ms, exp.kind = self.clock.market(), kind
            self.exports[download_id] = exp
            self.files[exp.token] = exp
            ids = self.stats_data.export_ids_created
            ids[scope] = ids.get(scope, 0) + 1
        # avgCostTimestampOfLast30d: an (unscaled) duration in ms, like Binance's 7241837 example
        return {"avgCostTimestampOfLast30d": int(self.cfg.export_processing_seconds * 1000), "downloadId": download_id}

    def export_link(self, p: Params, market: str, kind: str = "order", *, base_url: str = "") -> dict:
        download_id = p.text("downloadId", required=True)
        with self.lock:
            self.stats_data.export_link_requests += 1
            exp = self.exports.get(download_id or "")
            if exp is None or exp.market != market or exp.kind != kind:
                # UNCONFIRMED: the answer for an unknown downloadId is not documented.
                raise invalid_value("downloadId")
            now = self.clock.wire()
            pm = market == "pm_um"
            if now < exp.ready_ms or self.exports_held:
                out = {
                    "downloadId": exp.download_id,
                    "status": "processing",
                    "url": "",
                    "notified": False,
                    "expirationTimestamp": -1,
                    "isExpired": None,
                }
                if pm:
                    out["s3Link"] = None
                return out
            if exp.data is None:
                self._build_file(exp)
            url = self.file_url(exp, base_url)
            expired = now >= exp.expires_ms
            out = {
                "downloadId": exp.download_id,
                "status": "completed",
                "url": url,
                "notified": True,
                "expirationTimestamp": exp.expires_ms,
                "isExpired": True if expired else None,
            }
            if pm:
                # Portfolio Margin: the link is given in s3Link and url is left empty (one of the two shapes the
                # client must handle; docs/binance-facts.md §Export download links).
                out["url"], out["s3Link"] = "", url
            return out

    def _build_file(self, exp: Export) -> None:
        if exp.kind != "order":
            self._build_fill_file(exp)
            return
        # the account as it was when the export was requested (docs/design/futures-rest.md §Sandbox history)
        held = self.orders_as_of(exp.market, exp.market_ms)
        rows = export_dialects.selected(held, exp.start_ms, exp.end_ms, self.cfg.export_selection)
        exp.file_name, exp.data = export_dialects.build_export(
            rows,
            dialect=self.cfg.export_dialect,
            offset_minutes=self.cfg.display_utc_offset_minutes,
            uid=self.cfg.uid,
            created_ms=exp.ready_ms,
            suffix=exp.token[:8],
            empty_form=self.cfg.export_empty_form,
            damage=self.cfg.export_damage,
            final_newline=self.cfg.export_final_newline,
        )
        # a link lives on the sandbox's clock, unscaled: it expires when a test advances the clock past it, never
        # because a loaded machine ran slowly (docs/design/exports.md §Links)
        exp.expires_ms = exp.ready_ms + int(self.cfg.export_link_ttl_seconds * 1000)

    def _build_fill_file(self, exp: Export) -> None:
        """A trade or income export: the ledger's records of the range as of the request (docs/design/trades.md)."""
        led = self.ledger(exp.market)
        if exp.kind == "trade":
            records = [t for rows in led.trades.values() for t in rows if t["time"] <= exp.market_ms]
            dialect = self.cfg.export_trade_dialect
        else:
            records = [r for r in led.income if r["time"] <= exp.market_ms]
            dialect = self.cfg.export_income_dialect
        exp.file_name, exp.data = fill_exports.build_fill_export(
            exp.kind,
            fill_exports.selected(records, exp.start_ms, exp.end_ms),
            dialect=dialect,
            offset_minutes=self.cfg.display_utc_offset_minutes,
            uid=self.cfg.uid,
            created_ms=exp.ready_ms,
            suffix=exp.token[:8],
        )
        exp.expires_ms = exp.ready_ms + int(self.cfg.export_link_ttl_seconds * 1000)  # the sandbox's clock, unscaled

    def file_url(self, exp: Export, base_url: str) -> str:
        from urllib.parse import quote

        ttl = max(1, int(self.cfg.export_link_ttl_seconds))
        stamp = datetime.fromtimestamp(exp.ready_ms / 1000, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
        sig = exp.url_signature
        return (
            f"{base_url}/sandbox-files/{exp.token}/{quote(exp.file_name or '', safe='')}"
            f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={stamp}&X-Amz-Expires={ttl}"
            f"&X-Amz-SignedHeaders=host&X-Amz-Signature={sig}"
        )

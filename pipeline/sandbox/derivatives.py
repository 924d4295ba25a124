"""The sandbox's USDⓈ-M / Portfolio-Margin endpoints and the asynchronous export (create, link, file), as a mixin of
:class:`pipeline.sandbox.core.Exchange`, whose state they share."""

from __future__ import annotations

import bisect
import random
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pipeline.binance import facts
from pipeline.sandbox import export_dialects
from pipeline.sandbox.auth import ApiError, invalid_value
from pipeline.sandbox.books import Account, FuturesBook, fmt_units
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.limits import WeightLimiter
from pipeline.sandbox.universe import FUTURES_SYMBOLS
from pipeline.times import DAY_MS, month_of, now_ms

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


class DerivativesApi:
    """Futures allOrders and exchangeInfo, export create / link / file; the state is the Exchange's."""

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
            "serverTime": now_ms(),
            "futuresType": "U_MARGINED",
            "rateLimits": [
                *self.limiter.rate_limits("futures"),
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            ],
            "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": symbols,
        }

    def futures_all_orders(self, p: Params, market: str) -> list[dict]:
        """/fapi/v1/allOrders and /papi/v1/um/allOrders.

        Window <= 7 days (-4165), default the last 7 days; times filter the order's creation ``time``
        (UNCONFIRMED; the docs do not say); ``orderId`` = ids >= orderId. Retention (binance-api.md §7): orders
        created > 90 days ago and CANCELED/EXPIRED orders without fill created > 3 days ago are not returned.
        ``symbol`` is optional (optional since 2026-08-25 per the change log).
        """
        book: FuturesBook = self.account.usdm if market == "usdm" else self.account.pm_um
        symbol = p.text("symbol")
        order_id = p.int("orderId")
        start, end = p.int("startTime"), p.int("endTime")
        limit = p.limit()
        if symbol is not None and symbol not in {s[0] for s in FUTURES_SYMBOLS}:
            raise ApiError(400, -1121, "Invalid symbol.")
        if start is not None and end is not None:
            if start > end:
                raise ApiError(400, -1023, "Start time is greater than end time.")
            if end - start > facts.FUTURES_WINDOW_MS:
                raise ApiError(400, -4165, "Invalid time interval. Maximum time interval is 7 days.")
        now = now_ms()
        rows = book.per_symbol.get(symbol, []) if symbol else book.orders
        if order_id is not None and start is None and end is None:
            ids = book.per_symbol_ids.get(symbol, []) if symbol else None
            if ids is not None:
                cand = rows[bisect.bisect_left(ids, order_id) :]
            else:
                cand = [o for o in rows if o["orderId"] >= order_id]
            cand_iter = cand
        else:
            if start is None and end is None:
                end = now
            if start is None:
                start = end - facts.FUTURES_WINDOW_MS
            if end is None:
                end = start + facts.FUTURES_WINDOW_MS
            times = book.per_symbol_times.get(symbol, []) if symbol else book.times
            cand_iter = rows[bisect.bisect_left(times, start) : bisect.bisect_right(times, end)]
        out = []
        for o in cand_iter:
            if futures_rest_visible(o, now):
                out.append(dict(o))
                if len(out) >= limit:
                    break
        return out

    # -------------------------------------------------------------------------------------------------------
    # exports

    def export_create(self, p: Params, market: str) -> dict:
        start = p.int("startTime", required=True)
        end = p.int("endTime", required=True)
        assert start is not None and end is not None
        if start > end:
            raise ApiError(400, -1023, "Start time is greater than end time.")
        if end - start > EXPORT_MAX_SPAN_MS:
            # UNCONFIRMED code/message: Binance only documents "must not exceed 1 year"; -1127 is the
            # "lookup interval is too big" code.
            raise ApiError(400, -1127, "More than 365 days between startTime and endTime.")
        now = now_ms()
        month = month_of(now)
        with self.lock:
            used = self.quota_used.get((market, month), 0)
            if used >= self.cfg.export_quota:
                self.stats_data.export_quota_rejections += 1
                # UNCONFIRMED: Binance documents no code/message for an exhausted monthly quota. HTTP 400, a code
                # from no documented table (-4999), and a message that names the monthly limit.
                raise ApiError(
                    400,
                    -4999,
                    f"The number of download requests has reached the monthly limit "
                    f"({self.cfg.export_quota} per month) for this endpoint. Please try "
                    "again next month.",
                )
            self.quota_used[(market, month)] = used + 1
            download_id = str(self.id_rng.randint(10**18, 9 * 10**18))
            processing_ms = int(self.cfg.export_processing_seconds * 1000 / self.cfg.time_scale)
            exp = Export(download_id, market, start, end, now, now + processing_ms, secrets.token_hex(16))
            self.exports[download_id] = exp
            self.files[exp.token] = exp
            ids = self.stats_data.export_ids_created
            ids[market] = ids.get(market, 0) + 1
        # avgCostTimestampOfLast30d: an (unscaled) duration in ms, like Binance's 7241837 example
        return {"avgCostTimestampOfLast30d": int(self.cfg.export_processing_seconds * 1000), "downloadId": download_id}

    def export_link(self, p: Params, market: str, *, base_url: str = "") -> dict:
        download_id = p.text("downloadId", required=True)
        with self.lock:
            self.stats_data.export_link_requests += 1
            exp = self.exports.get(download_id or "")
            if exp is None or exp.market != market:
                # UNCONFIRMED: the answer for an unknown downloadId is not documented.
                raise invalid_value("downloadId")
            now = now_ms()
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
                # client must handle; binance-api.md §5.1).
                out["url"], out["s3Link"] = "", url
            return out

    def _build_file(self, exp: Export) -> None:
        book = self.account.usdm if exp.market == "usdm" else self.account.pm_um
        rows = export_dialects.selected(book.orders, exp.start_ms, exp.end_ms, self.cfg.export_selection)
        exp.file_name, exp.data = export_dialects.build_export(
            rows,
            dialect=self.cfg.export_dialect,
            offset_minutes=self.cfg.display_utc_offset_minutes,
            uid=self.cfg.uid,
            created_ms=exp.ready_ms,
            suffix=exp.token[:8],
            empty_form=self.cfg.export_empty_form,
        )
        exp.expires_ms = exp.ready_ms + int(self.cfg.export_link_ttl_seconds * 1000 / self.cfg.time_scale)

    def file_url(self, exp: Export, base_url: str) -> str:
        from urllib.parse import quote

        ttl = max(1, int(self.cfg.export_link_ttl_seconds / self.cfg.time_scale))
        stamp = datetime.fromtimestamp(exp.ready_ms / 1000, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
        sig = exp.url_signature
        return (
            f"{base_url}/sandbox-files/{exp.token}/{quote(exp.file_name or '', safe='')}"
            f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={stamp}&X-Amz-Expires={ttl}"
            f"&X-Amz-SignedHeaders=host&X-Amz-Signature={sig}"
        )


def futures_rest_visible(o: dict, now: int) -> bool:
    if o["time"] < now - facts.FUTURES_REST_RETENTION_DAYS * DAY_MS:
        return False
    zero = o["executedQty"].strip("0.") == ""
    old = o["time"] < now - facts.FUTURES_ZERO_FILL_RETENTION_DAYS * DAY_MS
    return not (o["status"] in ("CANCELED", "EXPIRED") and zero and old)

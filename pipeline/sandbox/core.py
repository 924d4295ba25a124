"""Endpoint logic of the sandbox exchange, independent of the transport (REST and WS API share it).

Each endpoint is an ``Endpoint`` (group, weight, security, handler); handlers take a ``Params`` object (string
values, as on the wire) and return the JSON-able result or raise ``ApiError``.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pipeline.binance import facts
from pipeline.sandbox.account import generate_account
from pipeline.sandbox.auth import ApiError, Verifier, illegal, invalid_value, mandatory
from pipeline.sandbox.books import OPEN_STATUSES, Account, SpotBook, fmt_units
from pipeline.sandbox.clock import SandboxClock
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.derivatives import DerivativesApi, Export
from pipeline.sandbox.futures_rest import FuturesRestApi
from pipeline.sandbox.limits import WeightLimiter, scaled_interval
from pipeline.sandbox.spot_trades import SUPPORTED_COMBINATIONS, SpotTrades, my_trades_weight
from pipeline.times import now_ms

_INT_RE = re.compile(r"^-?[0-9]{1,20}$")
_SYMBOL_RE = re.compile(r"^[A-Z0-9\-_.]{1,20}$")
SIGNED_PARAMS = ("timestamp", "recvWindow", "signature")


class Params:
    """Request parameters as strings; remembers what the handler read (spot rejects unread ones with -1104)."""

    def __init__(self, items: dict[str, str]) -> None:
        self.items = items
        self.read: set[str] = set()

    def get(self, name: str) -> str | None:
        self.read.add(name)
        value = self.items.get(name)
        return None if value is None else value

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.get(name)
        if value is None or value == "":
            if required:
                raise mandatory(name)
            return None
        return value

    def int(self, name: str, *, required: bool = False) -> int | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        if not _INT_RE.match(value):
            raise illegal(name)
        return int(value)

    def limit(self, default: int = 500, maximum: int = facts.PAGE_LIMIT) -> int:
        value = self.int("limit")
        if value is None:
            return default
        if not 1 <= value <= maximum:
            raise invalid_value("limit")
        return value

    def check_all_read(self) -> None:
        sent = set(self.items)
        if sent - self.read - set(SIGNED_PARAMS) - {"apiKey", "returnRateLimits"}:
            read = len(sent & (self.read | set(SIGNED_PARAMS) | {"apiKey", "returnRateLimits"}))
            raise ApiError(
                400, -1104, f"Not all sent parameters were read; read '{read}' parameter(s) but was sent '{len(sent)}'."
            )


@dataclass
class Endpoint:
    name: str
    group: str  # spot | futures | papi
    signed: bool
    handler: Callable[[Params], Any]
    weight: Callable[[Params], int]
    strict_params: bool = True  # spot: unread params -> -1104; futures ignore unknown params


@dataclass
class Stats:
    requests: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)
    errors_by_code: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    ws_connections: int = 0
    export_ids_created: dict[str, int] = field(default_factory=dict)
    export_link_requests: int = 0
    export_file_downloads: int = 0
    export_quota_rejections: int = 0


class Exchange(FuturesRestApi, DerivativesApi):
    """All sandbox state: account, limiter, exports, stats. Thread-safe enough for one event loop + readers."""

    def __init__(self, cfg: SandboxConfig) -> None:
        self.cfg = cfg
        self.base_url = ""  # set by the server once the port is known (export links point here)
        self.exports_held = False  # tests: every export stays "processing", however slow the machine is
        started = time.monotonic()
        self.now_ms = cfg.now_ms if cfg.now_ms is not None else now_ms()
        self.clock = SandboxClock(self.now_ms, self.now_ms - now_ms() if cfg.server_time_at_market else 0)
        self.account: Account = generate_account(cfg, self.now_ms)
        self.generation_seconds = time.monotonic() - started
        self.verifier = Verifier.from_config(cfg)
        self.interval = scaled_interval(cfg.time_scale)
        self.limiter = WeightLimiter(
            limits={"spot": cfg.spot_weight_limit, "futures": cfg.futures_weight_limit, "papi": cfg.papi_weight_limit},
            interval=self.interval,
            ban_ms=max(1000, int(cfg.ban_seconds * 1000 / cfg.time_scale)),
            max_ban_ms=max(1000, int(facts.IP_BAN_MAX_MS / cfg.time_scale)),
        )
        self.fault_rng = random.Random(f"orderlake-sandbox:{cfg.seed}:faults")
        self.id_rng = random.Random()  # unseeded: `make run` restarts the sandbox (same seed) on later days
        self.ledgers: dict = {}  # futures trades and income per market (pipeline.sandbox.futures_ledger)
        self.exports: dict[str, Export] = {}
        self.files: dict[str, Export] = {}
        self.quota_used: dict[tuple[str, str], int] = {}
        self.stats_data = Stats()
        self.lock = threading.RLock()
        self.endpoints = self._endpoints()
        self.exchange_info_symbols = [self._spot_symbol_info(s) for s in self.account.listed]
        self.exchange_info_index = {s["symbol"]: s for s in self.exchange_info_symbols}

    # -------------------------------------------------------------------------------------------------------
    # routing table

    def _endpoints(self) -> dict[str, Endpoint]:
        w = lambda n: lambda p: n  # noqa: E731
        spot, ping, weights = {k: w(v) for k, v in facts.SPOT_WEIGHTS.items()}, w(1), facts.SPOT_WEIGHTS
        open_orders = lambda p: weights["open_orders_symbol" if p.items.get("symbol") else "open_orders_all"]  # noqa: E731
        fut_all, fut_info = w(facts.FUTURES_ALL_ORDERS_WEIGHT), w(facts.FUTURES_EXCHANGE_INFO_WEIGHT)
        fut_order, fut_account, fut_income = (
            w(facts.FUTURES_ORDER_WEIGHT),
            w(facts.FUTURES_ACCOUNT_WEIGHT),
            w(facts.FUTURES_INCOME_WEIGHT),
        )
        fut_open = lambda p: facts.FUTURES_OPEN_ORDERS_WEIGHT["symbol" if p.items.get("symbol") else "all"]  # noqa: E731
        fut_time, link = w(facts.FUTURES_TIME_WEIGHT), w(facts.EXPORT_LINK_WEIGHT)
        usdm_create, papi_create = w(facts.EXPORT_CREATE_WEIGHT["futures"]), w(facts.EXPORT_CREATE_WEIGHT["papi"])
        usdm_orders, pm_orders = (
            (lambda p: self.futures_all_orders(p, "usdm")),
            (lambda p: self.futures_all_orders(p, "pm_um")),
        )
        eps = [
            Endpoint("/api/v3/ping", "spot", False, lambda p: {}, ping),
            Endpoint("/api/v3/time", "spot", False, self.spot_time, spot["time"]),
            Endpoint("/api/v3/exchangeInfo", "spot", False, self.spot_exchange_info, spot["exchange_info"]),
            Endpoint("/api/v3/account", "spot", True, self.spot_account, spot["account"]),
            Endpoint("/api/v3/allOrders", "spot", True, self.spot_all_orders, spot["all_orders"]),
            Endpoint("/api/v3/allOrderList", "spot", True, self.spot_all_order_lists, spot["all_order_lists"]),
            Endpoint("/api/v3/openOrders", "spot", True, self.spot_open_orders, open_orders),
            Endpoint("/api/v3/order", "spot", True, self.spot_order, spot["order"]),
            Endpoint("/api/v3/orderList", "spot", True, self.spot_order_list, spot["order_list"]),
            Endpoint("/api/v3/openOrderList", "spot", True, self.spot_open_order_lists, spot["open_order_lists"]),
            Endpoint("/api/v3/myTrades", "spot", True, self.spot_my_trades, lambda p: my_trades_weight(p.items)),
            Endpoint("/fapi/v1/ping", "futures", False, lambda p: {}, ping, False),
            Endpoint("/fapi/v1/time", "futures", False, self.spot_time, fut_time, False),
            Endpoint("/fapi/v1/exchangeInfo", "futures", False, self.futures_exchange_info, fut_info, False),
            Endpoint("/fapi/v1/allOrders", "futures", True, usdm_orders, fut_all, False),
            *(
                Endpoint(n, "futures", True, h, usdm_create if c else link, False)
                for n, h, c in self.routes("/fapi/v1")
            ),
            *self._futures_reads("/fapi/v1", "futures", "usdm", fut_order, fut_open, fut_income),
            Endpoint(
                "/fapi/v3/account", "futures", True, lambda p: self.futures_account(p, "usdm"), fut_account, False
            ),
            Endpoint("/papi/v1/ping", "papi", False, lambda p: {}, ping, False),
            *self._futures_reads("/papi/v1/um", "papi", "pm_um", fut_order, fut_open, fut_income),
            Endpoint(
                "/papi/v1/um/account", "papi", True, lambda p: self.futures_account(p, "pm_um"), fut_account, False
            ),
            Endpoint("/papi/v1/um/allOrders", "papi", True, pm_orders, fut_all, False),
            *(
                Endpoint(n, "papi", True, h, papi_create if c else link, False)
                for n, h, c in self.routes("/papi/v1/um")
            ),
        ]
        return {e.name: e for e in eps}

    def _futures_reads(
        self, prefix: str, group: str, market: str, order: Callable, open_orders: Callable, income: Callable
    ) -> list[Endpoint]:
        """``order``, ``openOrders`` and ``income`` of one futures surface (USDⓈ-M or PM UM)."""
        handlers = (
            ("order", lambda p: self.futures_order(p, market), order),
            ("openOrders", lambda p: self.futures_open_orders(p, market), open_orders),
            ("income", lambda p: self.futures_income(p, market), income),
            ("userTrades", lambda p: self.futures_user_trades(p, market), lambda p: facts.FUTURES_USER_TRADES_WEIGHT),
        )
        return [Endpoint(f"{prefix}/{name}", group, True, fn, weight, False) for name, fn, weight in handlers]

    # WS API method -> REST endpoint with the same semantics (docs/binance-facts.md §Spot WebSocket API)
    WS_METHODS: ClassVar[dict[str, str]] = {
        "ping": "/api/v3/ping",
        "time": "/api/v3/time",
        "exchangeInfo": "/api/v3/exchangeInfo",
        "account.status": "/api/v3/account",
        "order.status": "/api/v3/order",
        "openOrders.status": "/api/v3/openOrders",
        "allOrders": "/api/v3/allOrders",
        "orderList.status": "/api/v3/orderList",
        "openOrderLists.status": "/api/v3/openOrderList",
        "allOrderLists": "/api/v3/allOrderList",
        "myTrades": "/api/v3/myTrades",
    }

    # -------------------------------------------------------------------------------------------------------
    # spot

    def spot_time(self, p: Params) -> dict:
        return {"serverTime": self.clock.wire()}

    def _spot_symbol_info(self, symbol: str) -> dict:
        s = self.account.symbols[symbol]
        tick = fmt_units(1, s.pd, 8)
        step = fmt_units(1, s.qd, 8)
        return {
            "symbol": s.symbol,
            "status": "TRADING",
            "baseAsset": s.base,
            "baseAssetPrecision": 8,
            "quoteAsset": s.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT",
                "TAKE_PROFIT_LIMIT",
            ],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "amendAllowed": True,
            "pegInstructionsAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": s.quote in ("USDT", "BTC"),
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
                {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000000.00000000", "stepSize": step},
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": "0.00000000",
                    "maxQty": "100000.00000000",
                    "stepSize": "0.00000000",
                },
                {
                    "filterType": "TRAILING_DELTA",
                    "minTrailingAboveDelta": 10,
                    "maxTrailingAboveDelta": 2000,
                    "minTrailingBelowDelta": 10,
                    "maxTrailingBelowDelta": 2000,
                },
                {
                    "filterType": "PERCENT_PRICE_BY_SIDE",
                    "bidMultiplierUp": "5",
                    "bidMultiplierDown": "0.2",
                    "askMultiplierUp": "5",
                    "askMultiplierDown": "0.2",
                    "avgPriceMins": 5,
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": "5.00000000" if s.quote in ("USDT", "FDUSD") else "0.00010000",
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
            ],
            "permissions": [],
            "permissionSets": [["SPOT", "MARGIN"] if s.quote in ("USDT", "BTC") else ["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT"],
        }

    def spot_exchange_info(self, p: Params) -> dict:
        symbol = p.text("symbol")
        symbols_text = p.text("symbols")
        p.get("permissions")
        p.get("showPermissionSets")
        status = p.text("symbolStatus")
        if symbol and symbols_text:
            raise ApiError(400, -1128, "Combination of optional parameters invalid.")
        if status and (symbol or symbols_text):
            raise ApiError(400, -1128, "Combination of optional parameters invalid.")
        if symbol is not None:
            rows = [self._listed_info(symbol)]
        elif symbols_text is not None:
            try:
                names = json.loads(symbols_text)
            except ValueError as exc:
                raise illegal("symbols") from exc
            if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
                raise mandatory("symbols")
            rows = [self._listed_info(n) for n in names]
        elif status is not None:
            rows = [s for s in self.exchange_info_symbols if s["status"] == status]
        else:
            rows = self.exchange_info_symbols
        return {
            "timezone": "UTC",
            "serverTime": self.clock.wire(),
            "rateLimits": self._spot_rate_limits(),
            "exchangeFilters": [],
            "symbols": rows,
        }

    def _spot_rate_limits(self) -> list[dict]:
        # ORDERS limits are advertised for realism but not enforced (this account is read-only).
        return [
            *self.limiter.rate_limits("spot"),
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
        ]

    def _listed_info(self, symbol: str) -> dict:
        if not _SYMBOL_RE.match(symbol) or symbol not in self.exchange_info_index:
            raise ApiError(400, -1121, "Invalid symbol.")
        return self.exchange_info_index[symbol]

    def _book(self, p: Params, *, required: bool = True):
        symbol = p.text("symbol", required=required)
        if symbol is None:
            return None
        sym = self.account.symbols.get(symbol)
        if sym is None or not sym.listed:
            # delisted pairs are gone from the matching engine: Binance answers -1121 for their history too
            raise ApiError(400, -1121, "Invalid symbol.")
        return self.account.books.get(symbol) or _EMPTY_BOOK

    def spot_account(self, p: Params) -> dict:
        omit = (p.text("omitZeroBalances") or "false").lower()
        if omit not in ("true", "false"):
            raise invalid_value("omitZeroBalances")
        balances = self.account.balances
        if omit == "true":
            balances = [b for b in balances if b["free"].strip("0.") or b["locked"].strip("0.")]
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": "0.00100000",
                "taker": "0.00100000",
                "buyer": "0.00000000",
                "seller": "0.00000000",
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.now_ms - 3_600_000,
            "accountType": "SPOT",
            "balances": [dict(b) for b in balances],
            "permissions": ["SPOT"],
            "uid": self.cfg.uid,
        }

    def spot_all_orders(self, p: Params) -> list[dict]:
        book = self._book(p)
        order_id = p.int("orderId")
        start, end = p.int("startTime"), p.int("endTime")
        limit = p.limit()
        if order_id is not None and order_id < 0:
            raise invalid_value("orderId")
        if start is not None and end is not None:
            if end < start:
                # UNCONFIRMED for today's API; -1102 on endTime is what Binance answered for a bad pair in 2021
                # (binance-spot-api-docs PR #38).
                raise mandatory("endTime")
            if end - start > facts.SPOT_WINDOW_MS:
                raise ApiError(400, -1127, "More than 24 hours between startTime and endTime.")
        # "If startTime and/or endTime are specified, orderId is ignored"; times filter the LAST update
        # (updateTime), results ascending by (updateTime, orderId).
        if start is not None:
            rows = book.updated_between(start, end if end is not None else 2**62, limit)
        elif end is not None:
            rows = book.updated_until(end, limit)  # UNCONFIRMED: the most recent `limit` updated <= endTime
        elif order_id is not None:
            rows = book.from_id(order_id, limit)
        else:
            rows = book.recent(limit)
        return [dict(o) for o in rows]

    def spot_all_order_lists(self, p: Params, *, ws: bool = False) -> list[dict]:
        acct = self.account
        from_id = p.int("fromId")
        start, end = p.int("startTime"), p.int("endTime")
        limit = p.limit()
        if from_id is not None and (start is not None or end is not None):
            if not ws:  # REST: "fromId cannot be used with startTime/endTime"; the WS API ignores fromId
                raise ApiError(400, -1128, "Combination of optional parameters invalid.")
            from_id = None
        if start is not None and end is not None:
            if end < start:
                raise mandatory("endTime")
            if end - start > facts.SPOT_WINDOW_MS:
                raise ApiError(400, -1127, "More than 24 hours between startTime and endTime.")
        import bisect

        if start is not None or end is not None:
            lo = start if start is not None else 0
            hi = end if end is not None else 2**62
            if start is None:
                j = bisect.bisect_right(acct.list_times, hi)
                rows = acct.lists_by_time[max(0, j - limit) : j]
            else:
                i = bisect.bisect_left(acct.list_times, lo)
                j = bisect.bisect_right(acct.list_times, hi)
                rows = acct.lists_by_time[i : min(j, i + limit)]
        elif from_id is not None:
            i = bisect.bisect_left(acct.list_ids, from_id)
            rows = acct.order_lists[i : i + limit]
        else:
            rows = acct.order_lists[-limit:]
        return [_copy_list(r) for r in rows]

    def spot_open_orders(self, p: Params) -> list[dict]:
        book = self._book(p, required=False)
        books = (
            [book] if book is not None else [b for s, b in self.account.books.items() if self.account.symbols[s].listed]
        )
        rows = [o for b in books for o in b.visible if o["status"] in OPEN_STATUSES]
        return [dict(o) for o in rows]

    def spot_order(self, p: Params) -> dict:
        book = self._book(p)
        order_id = p.int("orderId")
        client_id = p.text("origClientOrderId")
        if order_id is None and client_id is None:
            raise ApiError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        order = book.by_id.get(order_id) if order_id is not None else book.by_client.get(client_id or "")
        if order is not None and order_id is not None and client_id is not None and order["clientOrderId"] != client_id:
            order = None  # both given: found by orderId, then origClientOrderId must match
        if order is None:
            raise ApiError(400, -2013, "Order does not exist.")
        if order["orderId"] in book.archived_ids:
            raise ApiError(
                400, -2026, "Order was canceled or expired with no executed qty over 90 days ago and has been archived."
            )
        return dict(order)

    def spot_order_list(self, p: Params) -> dict:
        list_id = p.int("orderListId")
        client_id = p.text("origClientOrderId")
        if list_id is None and client_id is None:
            raise ApiError(
                400, -1102, "Param 'origClientOrderId' or 'orderListId' must be sent, but both were empty/null!"
            )
        # "If both are given, only origClientOrderId is used"
        row = (
            self.account.list_by_client.get(client_id)
            if client_id is not None
            else self.account.list_by_id.get(list_id or -1)
        )
        if row is None:
            raise ApiError(400, -2013, "Order list does not exist.")
        return _copy_list(row)

    def spot_my_trades(self, p: Params) -> list[dict]:
        """``myTrades`` (REST and WS API alike; docs/binance-facts.md §Spot myTrades)."""
        self._book(p)  # -1121 for an unknown or delisted symbol
        trades = self.account.spot_trades.get(p.text("symbol") or "") or SpotTrades("")
        order_id, from_id = p.int("orderId"), p.int("fromId")
        start, end = p.int("startTime"), p.int("endTime")
        limit = p.limit()
        given = {
            k
            for k, v in (("orderId", order_id), ("fromId", from_id), ("startTime", start), ("endTime", end))
            if v is not None
        }
        if frozenset(given) not in SUPPORTED_COMBINATIONS:
            raise ApiError(400, -1128, "Combination of optional parameters invalid.")
        if start is not None and end is not None:
            if end < start:
                raise mandatory("endTime")  # UNCONFIRMED, as for allOrders
            if end - start > facts.SPOT_WINDOW_MS:
                raise ApiError(400, -1127, "More than 24 hours between startTime and endTime.")
        if order_id is not None:
            rows = trades.of_order(order_id, from_id, limit)
        elif from_id is not None:
            rows = trades.from_id(from_id, limit)
        elif start is not None or end is not None:
            rows = trades.between(start, end, limit)
        else:
            rows = trades.recent(limit)
        return [dict(t) for t in rows]

    def spot_open_order_lists(self, p: Params) -> list[dict]:
        return [_copy_list(r) for r in self.account.order_lists if r["listOrderStatus"] == "EXECUTING"]

    # -------------------------------------------------------------------------------------------------------
    # truth and stats

    def truth(self, as_of_ms: int | None = None) -> dict[str, Any]:
        """Everything the account holds; futures orders in their state at ``as_of_ms`` (default: the market clock),
        with every state they passed through in ``usdm_versions`` / ``pm_um_versions``."""
        acct = self.account
        at = self.clock.market() if as_of_ms is None else as_of_ms
        spot, delisted_orders = [], []
        for sym, book in acct.books.items():
            target = spot if acct.symbols[sym].listed else delisted_orders
            for o in book.orders:
                row = dict(o)
                row["archived"] = o["orderId"] in book.archived_ids
                target.append(row)
        spot.sort(key=lambda r: (r["symbol"], r["orderId"]))
        trades = [dict(t) for name, book in sorted(acct.spot_trades.items()) for t in book.trades]
        return {
            "spot_orders": spot,
            "spot_trades": [t for t in trades if acct.symbols[t["symbol"]].listed],
            "delisted_trades": [t for t in trades if not acct.symbols[t["symbol"]].listed],
            "spot_order_lists": [_copy_list(r) for r in acct.order_lists],
            "usdm_orders": self.orders_as_of("usdm", at),
            "pm_um_orders": self.orders_as_of("pm_um", at),
            "usdm_versions": acct.usdm.versions_until(at),
            "pm_um_versions": acct.pm_um.versions_until(at),
            **self._futures_ledger_truth(at),
            "delisted": list(acct.delisted),
            "delisted_orders": delisted_orders,
            "listed": list(acct.listed),
            "active": list(acct.active),
            "hidden_active": list(acct.hidden_active),
            "busy_day": dict(acct.busy_day),
            "balances": [dict(b) for b in acct.balances],
            "uid": self.cfg.uid,
            "display_utc_offset_minutes": self.cfg.display_utc_offset_minutes,
            "generated_at_ms": acct.now_ms,
            "as_of_ms": at,
        }

    def _futures_ledger_truth(self, at: int) -> dict[str, list[dict]]:
        """Every futures trade and income record up to ``at`` (no REST retention); ``at`` may not precede the
        market clock's walk, which never goes back."""
        out: dict[str, list[dict]] = {}
        for market in ("usdm", "pm_um"):
            led = self.ledger(market)
            out[f"{market}_trades"] = [dict(t) for rows in led.trades.values() for t in rows if t["time"] <= at]
            out[f"{market}_income"] = [dict(r) for r in led.income if r["time"] <= at]
        return out

    def stats(self) -> dict[str, Any]:
        s = self.stats_data
        with self.lock:
            return {
                "requests": s.requests,
                "by_endpoint": dict(s.by_endpoint),
                "errors_by_code": dict(s.errors_by_code),
                "weight": dict(self.limiter.weight_total),
                "http_429": self.limiter.count_429,
                "http_418": self.limiter.count_418,
                "faults": dict(s.faults),
                "ws_connections": s.ws_connections,
                "export_ids_created": dict(s.export_ids_created),
                "export_link_requests": s.export_link_requests,
                "export_file_downloads": s.export_file_downloads,
                "export_quota_rejections": s.export_quota_rejections,
                "rate_limit_interval": {
                    "interval": self.interval.name,
                    "intervalNum": self.interval.num,
                    "header": self.interval.header,
                },
                "generation_seconds": round(self.generation_seconds, 3),
            }


def _copy_list(r: dict) -> dict:
    out = dict(r)
    out["orders"] = [dict(o) for o in r["orders"]]
    return out


_EMPTY_BOOK = SpotBook("")

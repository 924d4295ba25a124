"""An in-memory spot API with Binance's allOrders/allOrderList semantics, for fast unit tests of this package.

Implements: symbol required and -1121 for unknown pairs; limit <= 1000; startTime..endTime span <= 24 h (-1127);
time filters on the *last update* (updateTime / transactionTime, inclusive bounds), ascending by it; ``orderId``
= ids >= orderId ascending (ignored when times are given, as the WS API documents); neither = the most recent
``limit`` orders; fromId + times = -1128; zero-fill cancels older than 90 days are archived (invisible); weight
counting per call. The real sandbox (pipeline.sandbox) is the integration-level counterpart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.binance import errors
from pipeline.binance.facts import (
    PAGE_LIMIT,
    SPOT_WEIGHTS,
    SPOT_WINDOW_MS,
    SPOT_ZERO_FILL_ARCHIVE_DAYS,
    WEIGHT_PER_MINUTE,
)
from pipeline.spot.common import TERMINAL_LIST_STATUSES, TERMINAL_STATUSES
from pipeline.times import DAY_MS


def _refused(code: int, msg: str) -> errors.BinanceError:
    """The error the real client raises for this answer (a 400 with Binance's code)."""
    return errors.from_response(http_status=400, code=code, msg=msg, endpoint="fake spot API")


def make_order(
    symbol: str,
    order_id: int,
    time: int,
    update_time: int | None = None,
    *,
    status: str = "FILLED",
    executed: str = "1.00000000",
    **extra: Any,
) -> dict[str, Any]:
    """A spot order object shaped like Binance's (decimals as strings)."""
    row = {
        "symbol": symbol,
        "orderId": order_id,
        "orderListId": -1,
        "clientOrderId": f"c{symbol}{order_id}",
        "price": "100.00000000",
        "origQty": "1.00000000",
        "executedQty": executed,
        "cummulativeQuoteQty": "100.00000000" if executed != "0.00000000" else "0.00000000",
        "status": status,
        "timeInForce": "GTC",
        "type": "LIMIT",
        "side": "BUY",
        "stopPrice": "0.00000000",
        "icebergQty": "0.00000000",
        "time": time,
        "updateTime": update_time if update_time is not None else time,
        "isWorking": True,
        "workingTime": time,
        "origQuoteOrderQty": "0.00000000",
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }
    row.update(extra)
    return row


def make_list(
    list_id: int, transaction_time: int, *, symbol: str = "BTCUSDT", status: str = "ALL_DONE"
) -> dict[str, Any]:
    return {
        "orderListId": list_id,
        "contingencyType": "OCO",
        "listStatusType": "ALL_DONE",
        "listOrderStatus": status,
        "listClientOrderId": f"l{list_id}",
        "transactionTime": transaction_time,
        "symbol": symbol,
        "orders": [],
    }


@dataclass
class FakeSpotApi:
    now: int
    listed: dict[str, tuple[str, str]] = field(default_factory=dict)  # symbol -> (base, quote)
    orders: dict[str, list[dict]] = field(default_factory=dict)  # queryable symbols (listed or delisted)
    order_lists: list[dict] = field(default_factory=list)
    balances: dict[str, str] = field(default_factory=dict)
    bad_symbols: set[str] = field(default_factory=set)  # delisted AND rejected with -1121
    reject_order_id_zero: bool = False
    window_order: str = "updateTime"  # "orderId" simulates a server that sorts time-filtered pages by id
    weight_limit_per_minute: int = WEIGHT_PER_MINUTE["spot"]
    weight: int = 0
    calls: list[tuple[str, dict]] = field(default_factory=list)

    # -- helpers -----------------------------------------------------------------------------------------------
    def add_orders(self, rows: Iterable[dict]) -> None:
        for r in rows:
            self.orders.setdefault(r["symbol"], []).append(r)
        for rows_ in self.orders.values():
            rows_.sort(key=lambda r: r["orderId"])

    def _charge(self, kind: str, params: dict) -> None:
        self.weight += SPOT_WEIGHTS[kind]
        self.calls.append((kind, params))

    def _visible(self, row: dict) -> bool:
        zero_fill = row["executedQty"].strip("0.") == ""
        archived = (
            row["status"] in ("CANCELED", "EXPIRED", "EXPIRED_IN_MATCH")
            and zero_fill
            and row["updateTime"] < self.now - SPOT_ZERO_FILL_ARCHIVE_DAYS * DAY_MS
        )
        return not archived and row["time"] <= self.now

    def truth(self, start_ms: int, end_ms: int) -> list[dict]:
        return sorted(
            (
                r
                for rows in self.orders.values()
                for r in rows
                if self._visible(r) and start_ms <= r["updateTime"] <= end_ms
            ),
            key=lambda r: (r["symbol"], r["orderId"]),
        )

    def call_count(self, kind: str) -> int:
        return sum(1 for k, _ in self.calls if k == kind)

    @staticmethod
    def _check_window(start_time: int | None, end_time: int | None, limit: int) -> None:
        if not 1 <= limit <= PAGE_LIMIT:
            raise _refused(-1100, "Illegal characters found in parameter 'limit'")
        if start_time is not None and end_time is not None:
            if end_time < start_time:
                raise _refused(-1104, "startTime after endTime")
            if end_time - start_time > SPOT_WINDOW_MS:
                raise _refused(-1127, "More than 24 hours between startTime and endTime.")

    # -- API ---------------------------------------------------------------------------------------------------
    def server_time(self) -> int:
        self._charge("time", {})
        return self.now

    def exchange_info(self, symbols: list[str] | None = None) -> dict:
        self._charge("exchange_info", {})
        return {
            "timezone": "UTC",
            "serverTime": self.now,
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.weight_limit_per_minute,
                }
            ],
            "symbols": [
                {"symbol": s, "status": "TRADING", "baseAsset": b, "quoteAsset": q}
                for s, (b, q) in sorted(self.listed.items())
            ],
        }

    def account(self, omit_zero_balances: bool = False) -> dict:
        self._charge("account", {})
        return {"balances": [{"asset": a, "free": v, "locked": "0.00000000"} for a, v in self.balances.items()]}

    def all_orders(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 500,
    ) -> list[dict]:
        self._charge(
            "all_orders",
            {"symbol": symbol, "order_id": order_id, "start_time": start_time, "end_time": end_time, "limit": limit},
        )
        if symbol in self.bad_symbols or (symbol not in self.listed and symbol not in self.orders):
            raise _refused(-1121, "Invalid symbol.")
        self._check_window(start_time, end_time, limit)
        rows = [r for r in self.orders.get(symbol, []) if self._visible(r)]
        if start_time is not None or end_time is not None:
            lo, hi = start_time or 0, end_time if end_time is not None else 2**62
            hits = [r for r in rows if lo <= r["updateTime"] <= hi]
            key = (
                (lambda r: (r["updateTime"], r["orderId"]))
                if self.window_order == "updateTime"
                else (lambda r: r["orderId"])
            )
            return [dict(r) for r in sorted(hits, key=key)[:limit]]
        if order_id is not None:
            if order_id == 0 and self.reject_order_id_zero:
                raise _refused(-1100, "Illegal characters found in parameter 'orderId'")
            return [dict(r) for r in rows if r["orderId"] >= order_id][:limit]
        return [dict(r) for r in rows[-limit:]]

    def all_order_lists(
        self,
        *,
        from_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 500,
    ) -> list[dict]:
        self._charge("all_order_lists", {"from_id": from_id, "start_time": start_time, "end_time": end_time})
        if from_id is not None and (start_time is not None or end_time is not None):
            raise _refused(-1128, "Combination of optional parameters invalid.")
        self._check_window(start_time, end_time, limit)
        rows = sorted(self.order_lists, key=lambda r: r["orderListId"])
        if start_time is not None or end_time is not None:
            lo, hi = start_time or 0, end_time if end_time is not None else 2**62
            hits = [r for r in rows if lo <= r["transactionTime"] <= hi]
            return [dict(r) for r in sorted(hits, key=lambda r: (r["transactionTime"], r["orderListId"]))[:limit]]
        if from_id is not None:
            return [dict(r) for r in rows if r["orderListId"] >= from_id][:limit]
        return [dict(r) for r in rows[-limit:]]

    def open_orders(self, symbol: str | None = None) -> list[dict]:
        self._charge("open_orders_symbol" if symbol else "open_orders_all", {"symbol": symbol})
        pool = [self.orders.get(symbol, [])] if symbol else list(self.orders.values())
        return [dict(r) for rows in pool for r in rows if r["status"] not in TERMINAL_STATUSES]

    def open_order_lists(self) -> list[dict]:
        self._charge("open_order_lists", {})
        return [dict(r) for r in self.order_lists if r["listOrderStatus"] not in TERMINAL_LIST_STATUSES]


def scenario(
    *,
    seed: int = 7,
    listed: int = 300,
    active: int = 12,
    days: int = 60,
    busy_day_orders: int = 2500,
    now: int = 1_709_294_400_000,
) -> FakeSpotApi:
    """An account shaped like the acceptance scenario: ``listed`` pairs, ``active`` of them traded over ``days``
    days (one with a busy day), orders updated across days, some still open, a delisted pair that is still
    queryable (DELISTUSDT), a delisted pair rejected with -1121 (GONEBUSD), history older than 90 days, order
    lists. ``now`` defaults to 2024-03-01 12:00 UTC."""
    import random

    rng = random.Random(seed)
    fake = FakeSpotApi(now=now)
    bases = [f"C{i:03d}" for i in range(listed)]
    for i, b in enumerate(bases):
        fake.listed[f"{b}USDT" if i % 3 else f"{b}BTC"] = (b, "USDT" if i % 3 else "BTC")
    symbols = sorted(fake.listed)
    traded = rng.sample(symbols, active)
    start = now - days * DAY_MS
    for k, sym in enumerate(traded):
        n = rng.randint(40, 400)
        times = sorted(rng.randint(start - 120 * DAY_MS, now - 1) for _ in range(n))
        if k == 0:  # the busy day: more than 2.5 pages of orders inside one UTC day
            day0 = (start // DAY_MS + 20) * DAY_MS
            times = sorted(times + [day0 + rng.randint(0, DAY_MS - 1) for _ in range(busy_day_orders)])
        rows = []
        for j, t in enumerate(times, 1):
            roll = rng.random()
            if roll < 0.05:
                rows.append(make_order(sym, j * 3, t, t, status="NEW", executed="0.00000000"))
            elif roll < 0.25:  # updated on a later day
                ut = min(t + rng.randint(DAY_MS // 2, 3 * DAY_MS), now - 1)
                rows.append(make_order(sym, j * 3, t, ut, status="CANCELED", executed="0.00000000"))
            else:
                rows.append(make_order(sym, j * 3, t, t + rng.randint(0, 5000)))
        fake.add_orders(rows)
    fake.balances = {fake.listed[s][0]: "1.50000000" for s in traded[: active // 2]}
    fake.balances["USDT"] = "1000.00000000"
    fake.add_orders(make_order("DELISTUSDT", j, start + j * 3_600_000) for j in range(1, 41))
    fake.bad_symbols.add("GONEBUSD")
    fake.order_lists = [make_list(j, start + j * 7_200_000 + 5) for j in range(1, 31)]
    return fake

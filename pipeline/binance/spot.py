"""Spot order-history methods, written once for both transports (REST and WS API).

Return values are Binance's JSON as sent (decimals stay strings, ints stay ints); weights come from
:mod:`pipeline.binance.facts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.binance.budget import limits_from_rate_limits
from pipeline.binance.facts import PAGE_LIMIT, SPOT_WEIGHTS
from pipeline.binance.transport import RestTransport


class SpotApi:
    """The spot method set; subclasses implement ``_call(name, params, weight=, signed=)``."""

    budget: Any

    def _call(self, name: str, params: Mapping[str, Any], *, weight: int, signed: bool) -> Any:
        raise NotImplementedError

    def server_time(self) -> int:
        return int(self._call("time", {}, weight=SPOT_WEIGHTS["time"], signed=False)["serverTime"])

    def exchange_info(self, symbols: Sequence[str] | None = None) -> dict:
        """All symbols, or the given ones (``symbol=`` for one, ``symbols=[...]`` JSON array for several)."""
        params: dict[str, Any] = {}
        if symbols:
            symbols = list(symbols)
            params = {"symbol": symbols[0]} if len(symbols) == 1 else {"symbols": symbols}
        info = self._call("exchange_info", params, weight=SPOT_WEIGHTS["exchange_info"], signed=False)
        limits = limits_from_rate_limits(info.get("rateLimits") if isinstance(info, dict) else None)
        if limits:  # free limit refresh for the shared budget
            self.budget.set_limits(limits, "exchangeInfo")
        return info

    def account(self, omit_zero_balances: bool = False) -> dict:
        params = {"omitZeroBalances": True} if omit_zero_balances else {}
        return self._call("account", params, weight=SPOT_WEIGHTS["account"], signed=True)

    def all_orders(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = PAGE_LIMIT,
    ) -> list[dict]:
        """Orders of one symbol: by ``order_id`` (>=) or a <=24 h ``start_time``..``end_time`` window."""
        params = {"symbol": symbol, "orderId": order_id, "startTime": start_time, "endTime": end_time, "limit": limit}
        return self._call("all_orders", params, weight=SPOT_WEIGHTS["all_orders"], signed=True)

    def all_order_lists(
        self,
        *,
        from_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = PAGE_LIMIT,
    ) -> list[dict]:
        params = {"fromId": from_id, "startTime": start_time, "endTime": end_time, "limit": limit}
        return self._call("all_order_lists", params, weight=SPOT_WEIGHTS["all_order_lists"], signed=True)

    def open_orders(self, symbol: str | None = None) -> list[dict]:
        weight = SPOT_WEIGHTS["open_orders_symbol"] if symbol else SPOT_WEIGHTS["open_orders_all"]
        return self._call("open_orders", {"symbol": symbol}, weight=weight, signed=True)

    def open_order_lists(self) -> list[dict]:
        return self._call("open_order_lists", {}, weight=SPOT_WEIGHTS["open_order_lists"], signed=True)

    def my_trades(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        from_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = PAGE_LIMIT,
    ) -> list[dict]:
        """The account's trades of one symbol (docs/binance-facts.md §Spot myTrades): by ``order_id`` (weight 5,
        optionally from ``from_id``), from a trade id, or in a window of at most 24 h (weight 20)."""
        params = {
            "symbol": symbol,
            "orderId": order_id,
            "fromId": from_id,
            "startTime": start_time,
            "endTime": end_time,
            "limit": limit,
        }
        weight = SPOT_WEIGHTS["my_trades_order" if order_id is not None else "my_trades"]
        return self._call("my_trades", params, weight=weight, signed=True)

    def order(self, symbol: str, *, order_id: int | None = None, orig_client_order_id: str | None = None) -> dict:
        if order_id is None and orig_client_order_id is None:
            raise ValueError("order() needs order_id or orig_client_order_id")
        params = {"symbol": symbol, "orderId": order_id, "origClientOrderId": orig_client_order_id}
        return self._call("order", params, weight=SPOT_WEIGHTS["order"], signed=True)

    def order_list(self, *, order_list_id: int | None = None, orig_client_order_id: str | None = None) -> dict:
        if order_list_id is None and orig_client_order_id is None:
            raise ValueError("order_list() needs order_list_id or orig_client_order_id")
        params = {"orderListId": order_list_id, "origClientOrderId": orig_client_order_id}
        return self._call("order_list", params, weight=SPOT_WEIGHTS["order_list"], signed=True)


_REST_PATHS = {
    "time": "/api/v3/time",
    "exchange_info": "/api/v3/exchangeInfo",
    "account": "/api/v3/account",
    "all_orders": "/api/v3/allOrders",
    "all_order_lists": "/api/v3/allOrderList",  # singular on REST
    "open_orders": "/api/v3/openOrders",
    "open_order_lists": "/api/v3/openOrderList",
    "order": "/api/v3/order",
    "order_list": "/api/v3/orderList",
    "my_trades": "/api/v3/myTrades",
}


class SpotRest(SpotApi):
    """Spot methods over REST (``/api/v3``)."""

    def __init__(self, transport: RestTransport) -> None:
        self.transport = transport
        self.budget = transport.budget

    def __repr__(self) -> str:
        return f"SpotRest({self.transport.base_url!r})"

    def _call(self, name: str, params: Mapping[str, Any], *, weight: int, signed: bool) -> Any:
        return self.transport.call(_REST_PATHS[name], params, weight=weight, signed=signed)

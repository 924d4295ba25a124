"""USDⓈ-M futures (``/fapi``) and Portfolio Margin (``/papi``) REST methods (weights: :mod:`pipeline.binance.facts`)."""

from __future__ import annotations

from typing import Any

from pipeline.binance.budget import limits_from_rate_limits
from pipeline.binance.facts import (
    FUTURES_ACCOUNT_WEIGHT,
    FUTURES_ALL_ORDERS_WEIGHT,
    FUTURES_EXCHANGE_INFO_WEIGHT,
    FUTURES_INCOME_WEIGHT,
    FUTURES_OPEN_ORDERS_WEIGHT,
    FUTURES_ORDER_WEIGHT,
    FUTURES_TIME_WEIGHT,
    FUTURES_USER_TRADES_WEIGHT,
    PAGE_LIMIT,
)
from pipeline.binance.transport import RestTransport


class _FuturesLike:
    transport: RestTransport
    all_orders_path = ""
    prefix = ""  # /fapi/v1 or /papi/v1/um: order, openOrders and income live under it
    account_path = ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transport.base_url!r})"

    def all_orders(
        self,
        symbol: str | None = None,
        *,
        order_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = PAGE_LIMIT,
    ) -> list[dict]:
        """Orders (window shorter than ``FUTURES_WINDOW_MS``; only the last ``FUTURES_REST_RETENTION_DAYS`` exist
        here, older ones come from the exports). ``symbol`` may be omitted only where Binance allows it (see
        :mod:`pipeline.binance.facts`); callers handle the "symbol required" answer."""
        params = {"symbol": symbol, "orderId": order_id, "startTime": start_time, "endTime": end_time, "limit": limit}
        return self.transport.call(self.all_orders_path, params, weight=FUTURES_ALL_ORDERS_WEIGHT, signed=True)

    def order(self, symbol: str, order_id: int) -> dict:
        """One order by id (weight 1); ``NoSuchOrder`` (-2013) once REST no longer keeps it
        (docs/binance-facts.md §Retention)."""
        params = {"symbol": symbol, "orderId": order_id}
        return self.transport.call(f"{self.prefix}/order", params, weight=FUTURES_ORDER_WEIGHT, signed=True)

    def open_orders(self, symbol: str | None = None) -> list[dict]:
        """Open orders of one symbol (weight 1) or of every symbol (40)."""
        weight = FUTURES_OPEN_ORDERS_WEIGHT["symbol" if symbol else "all"]
        return self.transport.call(f"{self.prefix}/openOrders", {"symbol": symbol}, weight=weight, signed=True)

    def account(self) -> dict:
        """Balances and the positions of the symbols with a position or an open order."""
        return self.transport.call(self.account_path, None, weight=FUTURES_ACCOUNT_WEIGHT, signed=True)

    def income(
        self,
        *,
        start_time: int,
        end_time: int,
        symbol: str | None = None,
        page: int | None = None,
        limit: int = PAGE_LIMIT,
    ) -> list[dict]:
        """Income records (each names its symbol); the last three months only."""
        params = {"symbol": symbol, "startTime": start_time, "endTime": end_time, "page": page, "limit": limit}
        return self.transport.call(f"{self.prefix}/income", params, weight=FUTURES_INCOME_WEIGHT, signed=True)

    def user_trades(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        from_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = PAGE_LIMIT,
    ) -> list[dict]:
        """The account's trades of one symbol (docs/binance-facts.md §Futures userTrades): a window of at most 7 days,
        or from a trade id (not together with times), or one order's."""
        params = {
            "symbol": symbol,
            "orderId": order_id,
            "fromId": from_id,
            "startTime": start_time,
            "endTime": end_time,
            "limit": limit,
        }
        return self.transport.call(f"{self.prefix}/userTrades", params, weight=FUTURES_USER_TRADES_WEIGHT, signed=True)

    def get(self, path: str, params: dict[str, Any] | None = None, *, weight: int, signed: bool = True) -> Any:
        """Escape hatch for other idempotent GET endpoints of this API (still budgeted and retried)."""
        return self.transport.call(path, params, weight=weight, signed=signed)


class UsdmRest(_FuturesLike):
    all_orders_path = "/fapi/v1/allOrders"
    prefix = "/fapi/v1"
    account_path = "/fapi/v3/account"

    def __init__(self, transport: RestTransport) -> None:
        self.transport = transport

    def server_time(self) -> int:
        return int(self.transport.call("/fapi/v1/time", weight=FUTURES_TIME_WEIGHT)["serverTime"])

    def exchange_info(self) -> dict:
        info = self.transport.call("/fapi/v1/exchangeInfo", weight=FUTURES_EXCHANGE_INFO_WEIGHT)
        limits = limits_from_rate_limits(info.get("rateLimits") if isinstance(info, dict) else None)
        if limits:
            self.transport.budget.set_limits(limits, "exchangeInfo")
        return info


class PapiRest(_FuturesLike):
    """Portfolio Margin. No time endpoint (in our sandbox at least): signing uses the futures clock."""

    all_orders_path = "/papi/v1/um/allOrders"
    prefix = "/papi/v1/um"
    account_path = "/papi/v1/um/account"

    def __init__(self, transport: RestTransport) -> None:
        self.transport = transport

    def um_all_orders(self, symbol: str | None = None, **kw: Any) -> list[dict]:
        """``GET /papi/v1/um/allOrders`` (same shape as UsdmRest.all_orders)."""
        return self.all_orders(symbol, **kw)

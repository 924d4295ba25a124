"""USDⓈ-M futures (``/fapi``) and Portfolio Margin (``/papi``) REST methods. Weights: binance-api.md §5.2, §7."""

from __future__ import annotations

from typing import Any

from pipeline.binance.budget import limits_from_rate_limits
from pipeline.binance.transport import RestTransport


class _FuturesLike:
    transport: RestTransport
    all_orders_path = ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transport.base_url!r})"

    def all_orders(
        self,
        symbol: str | None = None,
        *,
        order_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 1000,
    ) -> list[dict]:
        """Orders (window < 7 days; only the last ~90 days exist here — older ones come from the exports).

        ``symbol`` is optional since 2026-08-25 (derivatives change log); older deployments may insist on it.
        """
        params = {"symbol": symbol, "orderId": order_id, "startTime": start_time, "endTime": end_time, "limit": limit}
        return self.transport.call(self.all_orders_path, params, weight=5, signed=True)

    def get(self, path: str, params: dict[str, Any] | None = None, *, weight: int, signed: bool = True) -> Any:
        """Escape hatch for other idempotent GET endpoints of this API (still budgeted and retried)."""
        return self.transport.call(path, params, weight=weight, signed=signed)


class UsdmRest(_FuturesLike):
    all_orders_path = "/fapi/v1/allOrders"

    def __init__(self, transport: RestTransport) -> None:
        self.transport = transport

    def server_time(self) -> int:
        return int(self.transport.call("/fapi/v1/time", weight=1)["serverTime"])

    def exchange_info(self) -> dict:
        info = self.transport.call("/fapi/v1/exchangeInfo", weight=1)
        limits = limits_from_rate_limits(info.get("rateLimits") if isinstance(info, dict) else None)
        if limits:
            self.transport.budget.set_limits(limits, "exchangeInfo")
        return info


class PapiRest(_FuturesLike):
    """Portfolio Margin. No time endpoint (in our sandbox at least): signing uses the futures clock."""

    all_orders_path = "/papi/v1/um/allOrders"

    def __init__(self, transport: RestTransport) -> None:
        self.transport = transport

    def um_all_orders(self, symbol: str | None = None, **kw: Any) -> list[dict]:
        """``GET /papi/v1/um/allOrders`` (same shape as UsdmRest.all_orders)."""
        return self.all_orders(symbol, **kw)

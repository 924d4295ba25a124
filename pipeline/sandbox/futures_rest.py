"""The sandbox's USDⓈ-M and Portfolio-Margin UM REST reads, as a mixin of :class:`pipeline.sandbox.core.Exchange`:
``allOrders``, ``order``, ``openOrders``, the account's positions and the income history.

Every answer is the account as of the market clock (:mod:`pipeline.sandbox.clock`), with Binance's REST retention
(docs/binance-facts.md §Retention): orders created more than 90 days ago and CANCELED/EXPIRED orders without fill
created more than 3 days ago are gone, from ``allOrders`` and ``order`` alike. The UNCONFIRMED parts (what a window
filters, ``orderId`` together with a window, "less than" or "at most" 7 days, a symbol-less USDⓈ-M call) follow
:class:`~pipeline.sandbox.config.SandboxConfig`, so tests can run the client against each variant.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from pipeline.binance import facts
from pipeline.sandbox.auth import ApiError, mandatory
from pipeline.sandbox.clock import SandboxClock
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.futures_history import OPEN, FuturesHistory, FuturesOrder
from pipeline.times import DAY_MS

if TYPE_CHECKING:
    from pipeline.sandbox.books import Account
    from pipeline.sandbox.core import Params

NO_SUCH_ORDER = (400, -2013, "Order does not exist.")
INCOME_RETENTION_MS = 90 * DAY_MS  # "only the last three months" (docs/binance-facts.md §Futures income)
COMMISSION_RATE = Decimal("0.0004")


class FuturesRestApi:
    """USDⓈ-M (``market="usdm"``) and PM UM (``market="pm_um"``) order reads; the state is the Exchange's."""

    cfg: SandboxConfig
    account: Account
    clock: SandboxClock

    def history(self, market: str) -> FuturesHistory:
        hist = self.account.usdm if market == "usdm" else self.account.pm_um
        hist.ensure(self.clock.market())
        return hist

    def orders_as_of(self, market: str, now_ms: int) -> list[dict]:
        """Every order of ``market`` created by ``now_ms``, in its state then (no REST retention): what an export
        requested at that instant holds."""
        return self.history(market).orders_as_of(now_ms)

    def _symbol(self, p: Params, market: str, *, required: bool) -> str | None:
        symbol = p.text("symbol")
        if symbol is None and required:
            raise mandatory("symbol")
        if symbol is not None and symbol not in self.history(market).per_symbol:
            raise ApiError(400, -1121, "Invalid symbol.")
        return symbol

    # -- allOrders ----------------------------------------------------------------------------------------------------
    def futures_all_orders(self, p: Params, market: str) -> list[dict]:
        """``/fapi/v1/allOrders`` and ``/papi/v1/um/allOrders`` (docs/binance-facts.md §USDⓈ-M allOrders)."""
        required = market == "pm_um" or self.cfg.usdm_symbol_required
        symbol = self._symbol(p, market, required=required)
        order_id = p.int("orderId")
        start, end = p.int("startTime"), p.int("endTime")
        limit = p.limit()
        if start is not None and end is not None:
            if start > end:
                raise ApiError(400, -1023, "Start time is greater than end time.")
            span = end - start
            too_long = (
                span >= facts.FUTURES_WINDOW_MS
                if self.cfg.futures_window_rule == "less_than"
                else (span > facts.FUTURES_WINDOW_MS)
            )
            if too_long:
                raise ApiError(400, -4165, "Invalid time interval. Maximum time interval is 7 days.")
        now = self.clock.market()
        hist = self.history(market)
        if order_id is not None and start is None and end is None:
            rows = hist.per_symbol[symbol] if symbol else hist.orders
            ordered = sorted((o for o in rows if o.order_id >= order_id), key=lambda o: o.order_id)
            return _first(ordered, now, limit)
        recent = start is None and end is None and order_id is None
        if end is None:
            end = now if start is None else start + facts.FUTURES_WINDOW_MS - 1
        if start is None:
            start = end - facts.FUTURES_WINDOW_MS + 1
        if self.cfg.futures_window_field == "time":
            rows = hist.created_between(start, end, symbol)
        else:
            pool = hist.created_between(0, end, symbol)
            rows = [o for o in pool if (s := o.state(now)) is not None and start <= s["updateTime"] <= end]
            rows.sort(key=lambda o: (o.state(now)["updateTime"], o.order_id))  # type: ignore[index]
        if order_id is not None and self.cfg.futures_order_id_in_window == "combine":
            rows = [o for o in rows if o.order_id >= order_id]
        if recent:  # "otherwise most recent orders are returned"
            visible = [o.as_of(now) for o in rows if o.rest_visible(now)]
            return [r for r in visible[-limit:] if r is not None]
        return _first(rows, now, limit)

    # -- one order, open orders -------------------------------------------------------------------------------------
    def futures_order(self, p: Params, market: str) -> dict:
        """``GET /fapi/v1/order`` / ``/papi/v1/um/order``: the same retention as ``allOrders`` (-2013 beyond it)."""
        symbol = self._symbol(p, market, required=True)
        order_id = p.int("orderId")
        client_id = p.text("origClientOrderId")
        if order_id is None and client_id is None:
            raise ApiError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        hist = self.history(market)
        found: FuturesOrder | None = (
            hist.by_id.get((symbol or "", order_id))
            if order_id is not None
            else hist.by_client_id.get((symbol or "", client_id or ""))
        )
        now = self.clock.market()
        if found is None or not found.rest_visible(now):
            raise ApiError(*NO_SUCH_ORDER)
        return found.as_of(now) or {}

    def futures_open_orders(self, p: Params, market: str) -> list[dict]:
        symbol = self._symbol(p, market, required=False)
        now = self.clock.market()
        hist = self.history(market)
        rows = hist.per_symbol[symbol] if symbol else hist.orders
        out = []
        for o in rows:
            state = o.state(now)
            if state is not None and state["status"] in OPEN:
                out.append(o.as_of(now))
        return out

    # -- account and income -----------------------------------------------------------------------------------------
    def futures_account(self, p: Params, market: str) -> dict:
        """``/fapi/v3/account`` and ``/papi/v1/um/account``: positions of the symbols with a position or an open
        order (net filled quantity as of the market clock)."""
        now = self.clock.market()
        hist = self.history(market)
        positions = []
        for sym, rows in hist.per_symbol.items():
            net, has_open, scale = Decimal(0), False, 0
            for o in rows:
                state = o.state(now)
                if state is None:
                    break
                qty = Decimal(state["executedQty"])
                scale = max(scale, -qty.as_tuple().exponent if isinstance(qty.as_tuple().exponent, int) else 0)
                net += qty if o.static["side"] == "BUY" else -qty
                has_open = has_open or state["status"] in OPEN
            if net or has_open:
                positions.append(
                    {
                        "symbol": sym,
                        "positionSide": "BOTH",
                        "positionAmt": f"{net:.{scale}f}",
                        "unrealizedProfit": "0.00000000",
                        "updateTime": now,
                    }
                )
        assets = [{"asset": "USDT", "walletBalance": "10000.00000000", "updateTime": now}]
        if market == "usdm":
            return {"totalWalletBalance": "10000.00000000", "assets": assets, "positions": positions}
        return {"assets": assets, "positions": positions}

    def futures_income(self, p: Params, market: str) -> list[dict]:
        """``/fapi/v1/income`` / ``/papi/v1/um/income``: one COMMISSION record per fill step of an order, last three
        months only, the last 7 days without times, ``page``/``limit`` paging.

        See docs/binance-facts.md §Futures income."""
        symbol = self._symbol(p, market, required=False)
        kind = p.text("incomeType")
        start, end = p.int("startTime"), p.int("endTime")
        page = p.int("page") or 1
        limit = p.limit(default=100)
        now = self.clock.market()
        if start is None and end is None:
            start, end = now - 7 * DAY_MS, now
        start = max(start if start is not None else 0, now - INCOME_RETENTION_MS)
        end = min(end if end is not None else now, now)
        records = []
        if kind in (None, "COMMISSION"):
            hist = self.history(market)
            for o in hist.created_between(start - 400 * DAY_MS, end, symbol):
                records += _commissions(o, start, end)
        records.sort(key=lambda r: (r["time"], r["tranId"]))
        return records[(page - 1) * limit : page * limit]


def _first(rows: list[FuturesOrder], now: int, limit: int) -> list[dict]:
    out = []
    for o in rows:
        if o.rest_visible(now):
            row = o.as_of(now)
            if row is not None:
                out.append(row)
                if len(out) >= limit:
                    break
    return out


def _commissions(o: FuturesOrder, start: int, end: int) -> list[dict]:
    out, before = [], Decimal(0)
    for n, v in enumerate(o.versions):
        quote = Decimal(v["cumQuote"])
        if quote > before and start <= v["updateTime"] <= end:
            out.append(
                {
                    "symbol": o.symbol,
                    "incomeType": "COMMISSION",
                    "income": str(-(quote - before) * COMMISSION_RATE),
                    "asset": "USDT",
                    "info": "",
                    "time": v["updateTime"],
                    "tranId": (o.order_id % 10**15) * 8 + n,
                    "tradeId": str((o.order_id % 10**12) * 8 + n),
                }
            )
        before = max(before, quote)
    return out

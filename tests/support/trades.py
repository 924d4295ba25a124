"""A fake ``myTrades`` over a fixed list of trades, with Binance's paging rules, and truth/lake row comparison."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pipeline.binance.facts import PAGE_LIMIT


class FakeMyTrades:
    """``my_trades`` answered from ``trades`` (dicts in Binance's shape), metering every call."""

    def __init__(self, trades: list[dict]) -> None:
        self.trades = sorted(trades, key=lambda t: (t["symbol"], t["id"]))
        self.calls: list[dict[str, Any]] = []

    def my_trades(self, symbol: str, *, limit: int = 500, **kw: Any) -> list[dict]:
        self.calls.append({"symbol": symbol, **kw})
        assert limit <= PAGE_LIMIT
        rows = [t for t in self.trades if t["symbol"] == symbol]
        order_id, from_id = kw.get("order_id"), kw.get("from_id")
        start, end = kw.get("start_time"), kw.get("end_time")
        if order_id is not None:
            assert start is None and end is None
            rows = [t for t in rows if t["orderId"] == order_id and (from_id is None or t["id"] >= from_id)]
        elif from_id is not None:
            assert start is None and end is None, "fromId cannot be combined with times"
            rows = [t for t in rows if t["id"] >= from_id]
        elif start is not None:
            assert end is not None and end - start <= 86_400_000
            rows = [t for t in rows if start <= t["time"] <= end]
        return [dict(t) for t in rows[:limit]]


def trade(symbol: str, trade_id: int, order_id: int, time_ms: int, qty: str = "1.00000000") -> dict:
    return {
        "symbol": symbol,
        "id": trade_id,
        "orderId": order_id,
        "orderListId": -1,
        "price": "10.00000000",
        "qty": qty,
        "quoteQty": str(Decimal(qty) * 10),
        "commission": "0.00100000",
        "commissionAsset": "BNB",
        "time": time_ms,
        "isBuyer": True,
        "isMaker": False,
        "isBestMatch": True,
    }


SPOT_FIELDS = (
    ("symbol", "symbol"),
    ("trade_id", "id"),
    ("order_id", "orderId"),
    ("order_list_id", "orderListId"),
    ("price", "price"),
    ("qty", "qty"),
    ("quote_qty", "quoteQty"),
    ("commission", "commission"),
    ("commission_asset", "commissionAsset"),
    ("time", "time"),
    ("is_buyer", "isBuyer"),
    ("is_maker", "isMaker"),
    ("is_best_match", "isBestMatch"),
)


DECIMALS = frozenset({"price", "qty", "quote_qty", "commission"})


def api_shape(row: dict) -> tuple:
    """A trade as Binance sends it, normalised for comparison (decimals by value, times in ms)."""
    return tuple(Decimal(row[api]) if col in DECIMALS else row[api] for col, api in SPOT_FIELDS)


def lake_shape(row: dict) -> tuple:
    """A ``spot_trades`` row in the same normal form as :func:`api_shape`."""
    return tuple(_ms(row[col]) if col == "time" else row[col] for col, _ in SPOT_FIELDS)


def _ms(value: Any) -> int:
    return round(value.timestamp() * 1000) if hasattr(value, "timestamp") else int(value)

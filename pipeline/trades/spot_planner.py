"""Cost-based plan for spot ``myTrades``: it makes no call, it returns a :class:`TradesPlan`.

Only orders with an executed quantity have fills, and only between their creation and their last update, so the
lake's filled orders say which symbols and days can hold trades at all. Per symbol the planner prices three ways to
get every trade of the range and takes the cheapest:

* ``orders``: one ``orderId`` call (weight 5) per filled order touching the range;
* ``windows``: one 24 h window (weight 20) per day that can hold a fill, more pages on a busy day;
* ``cursor``: ``fromId`` pages of 1000 (weight 20) from the first trade of the range to past its end, starting
  after the last stored trade before the range, or from the first window that holds a trade.

Design: docs/design/trades.md §Spot plan.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pipeline.binance.facts import PAGE_LIMIT, SPOT_WEIGHTS
from pipeline.times import day_of, day_window, days_between
from pipeline.trades.stored import FilledOrder, StoredTrades

Strategy = Literal["orders", "windows", "cursor"]
DEFAULT_FILLS_PER_ORDER = 2.0  # until the lake holds trades of a symbol: priced high, so a cursor is never underpriced
WINDOW, BY_ORDER = SPOT_WEIGHTS["my_trades"], SPOT_WEIGHTS["my_trades_order"]


@dataclass
class SymbolTradesPlan:
    symbol: str
    strategy: Strategy
    orders: list[FilledOrder]  # filled orders whose fills can touch the range
    days: list[date]  # days of the range that can hold a fill
    cursor_from: int | None  # fromId to start at (None: find it with the first non-empty window)
    weights: dict[str, int]  # estimated weight of each strategy

    @property
    def weight(self) -> int:
        return self.weights[self.strategy]

    def summary(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "strategy": self.strategy,
            "orders": len(self.orders),
            "days": len(self.days),
            "weight": self.weight,
            "weights": self.weights,
        }


@dataclass
class TradesPlan:
    start: date
    end: date
    symbols: list[SymbolTradesPlan]
    baselines: dict[str, dict[str, int]]
    notes: list[str] = field(default_factory=list)

    @property
    def days(self) -> list[date]:
        return days_between(self.start, self.end)

    @property
    def est_weight(self) -> int:
        return sum(p.weight for p in self.symbols)

    def summary(self) -> dict[str, Any]:
        by = {s: [p for p in self.symbols if p.strategy == s] for s in ("orders", "windows", "cursor")}
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "days": len(self.days),
            "est_weight": self.est_weight,
            "strategies": {s: {"symbols": len(ps), "weight": sum(p.weight for p in ps)} for s, ps in by.items()},
            "baselines": self.baselines,
            "symbols": [p.summary() for p in self.symbols],
            "notes": self.notes,
        }

    def describe(self) -> str:
        s = self.summary()
        lines = [f"spot trades plan {s['start']}..{s['end']} ({s['days']} days): weight {s['est_weight']}"]
        for name, st in s["strategies"].items():
            lines.append(f"  {name:<8} {st['symbols']:>4} symbols weight {st['weight']}")
        for name, b in s["baselines"].items():
            lines.append(f"  baseline {name}: {b['calls']} calls, weight {b['weight']}")
        for p in self.symbols:
            lines.append(f"    {p.symbol:<14} {p.strategy:<8} weight {p.weight:>6} {p.weights}")
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


def plan_spot_trades(
    start: date,
    end: date,
    *,
    filled: Iterable[FilledOrder],
    stored: StoredTrades,
    active_symbols: Iterable[str] = (),
    now_ms: int,
    fills_per_order: float | None = None,
) -> TradesPlan:
    """Plan ``myTrades`` for the trades of days ``start``..``end`` (inclusive); makes no call.

    ``filled``: the lake's filled orders; ``stored``: the trades it already holds; ``active_symbols``: the symbols
    of the windows baseline (the spot symbols with orders); ``fills_per_order``: fixed estimate (default: learned
    per symbol from the stored trades).
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    lo, hi = day_window(start)[0], min(day_window(end)[1], now_ms)
    by_symbol: dict[str, list[FilledOrder]] = {}
    in_range: set[str] = set()
    n_orders = 0  # the baselines know nothing of the lake: every filled order of the range
    for o in filled:
        if o.time_ms <= hi and o.update_ms >= lo:
            in_range.add(o.symbol)
            n_orders += 1
            if not stored.holds_every_fill(o):  # trades never change: a complete order costs nothing again
                by_symbol.setdefault(o.symbol, []).append(o)
    plans = [_symbol_plan(sym, orders, lo, hi, stored, fills_per_order) for sym, orders in sorted(by_symbol.items())]
    days = len(days_between(start, min(end, day_of(now_ms)))) if lo <= hi else 0
    active = sorted(set(active_symbols) | in_range)
    baselines = {
        "windows_over_active": {
            "symbols": len(active),
            "calls": len(active) * days,
            "weight": len(active) * days * WINDOW,
        },
        "per_order": {"orders": n_orders, "calls": n_orders, "weight": n_orders * BY_ORDER},
    }
    return TradesPlan(start, end, plans, baselines)


def _symbol_plan(
    symbol: str, orders: list[FilledOrder], lo: int, hi: int, stored: StoredTrades, fixed_ratio: float | None
) -> SymbolTradesPlan:
    days = sorted({d for o in orders for d in days_between(day_of(max(o.time_ms, lo)), day_of(min(o.update_ms, hi)))})
    ratio = fixed_ratio if fixed_ratio is not None else _fills_per_order(symbol, stored)
    fills = len(orders) * ratio
    per_day = fills / max(len(days), 1)
    windows = len(days) * max(1, math.ceil((per_day + 1) / PAGE_LIMIT)) * WINDOW
    cursor_from = stored.last_id_before(symbol, lo)
    anchor = 0 if cursor_from is not None else WINDOW  # the first window that holds a trade starts the cursor
    cursor = anchor + max(1, math.ceil((fills + 1) / PAGE_LIMIT)) * WINDOW
    by_order = len(orders) * BY_ORDER
    weights = {"orders": by_order, "windows": windows, "cursor": cursor}
    strategy: Strategy = min(weights, key=lambda k: (weights[k], k != "orders"))  # type: ignore[assignment]
    return SymbolTradesPlan(symbol, strategy, orders, days, None if cursor_from is None else cursor_from + 1, weights)


def _fills_per_order(symbol: str, stored: StoredTrades) -> float:
    counts = [n for (sym, _), n in stored.count_by_order.items() if sym == symbol]
    if len(counts) < 20:
        return DEFAULT_FILLS_PER_ORDER
    return max(1.0, sum(counts) / len(counts))

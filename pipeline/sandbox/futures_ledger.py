"""The sandbox's USDⓈ-M / PM UM trades and income, derived from its futures orders as the market clock advances.

Every fill step of an order (a version whose executed quantity grew) becomes one to three trades at the order's
average price, the last one at the version's update time, so the trades of an order add up to its executed quantity
and quote amount. Trades are walked in time order through a position per (symbol, position side): a trade that
reduces a position realizes PnL against its average entry price. Income follows the trades: a COMMISSION record per
trade (USDT or BNB), a REALIZED_PNL record per trade that realized something (the same ``tranId`` as its commission:
Binance's ``tranId`` is unique only within one income type), FUNDING_FEE every 8 hours on every open position, and a
weekly TRANSFER. Nothing is ever rewritten: a trade at or before the clock never changes when the clock advances.
Facts: docs/binance-facts.md §Futures userTrades, §Futures income.
"""

from __future__ import annotations

import bisect
import heapq
import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from pipeline.sandbox.futures_history import FuturesHistory, FuturesOrder
from pipeline.sandbox.universe import ASSETS
from pipeline.times import DAY_MS

EIGHT = Decimal("0.00000001")
FUNDING_EVERY_MS = 8 * 3_600_000
TRANSFER_EVERY_MS = 7 * DAY_MS
TAKER, MAKER = Decimal("0.0005"), Decimal("0.0002")
BNB_DISCOUNT = Decimal("0.9")
_ID_SLOTS = 1024  # trade id = time * slots + slot: grows with time within a symbol


def _q8(value: Decimal) -> Decimal:
    return value.quantize(EIGHT, rounding=ROUND_HALF_UP)


def _text(value: Decimal) -> str:
    return f"{_q8(value):f}"


@dataclass
class Position:
    qty: Decimal = Decimal(0)  # signed: BUY adds, SELL subtracts
    entry: Decimal = Decimal(0)

    def fill(self, signed_qty: Decimal, price: Decimal) -> Decimal:
        """Apply a fill; returns the PnL it realized (before rounding)."""
        realized = Decimal(0)
        if self.qty and (self.qty > 0) != (signed_qty > 0):
            closed = min(abs(signed_qty), abs(self.qty))
            direction = 1 if self.qty > 0 else -1
            realized = (price - self.entry) * closed * direction
            rest = abs(signed_qty) - closed
            self.qty += signed_qty
            if rest > 0:  # flipped: the rest opens at this price
                self.entry = price
            elif not self.qty:
                self.entry = Decimal(0)
            return realized
        total = self.qty + signed_qty
        self.entry = (self.entry * abs(self.qty) + price * abs(signed_qty)) / abs(total)
        self.qty = total
        return realized


@dataclass
class FuturesLedger:
    """One market's trades and income up to ``until_ms`` (the last instant walked)."""

    history: FuturesHistory
    specs: dict[str, tuple[float, int, int]]  # symbol -> (reference price, price decimals, qty decimals)
    until_ms: int = -1
    trades: dict[str, list[dict]] = field(default_factory=dict)  # symbol -> by id (= by time)
    income: list[dict] = field(default_factory=list)  # by (time, tranId)
    income_times: list[int] = field(default_factory=list)
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    _pending: list[tuple[int, int, int, dict]] = field(default_factory=list)  # heap of (time, seq, -, trade)
    _seen_orders: int = 0
    _seq: int = 0
    _ids: dict[str, set[int]] = field(default_factory=dict)
    _next_funding: int = 0
    _next_transfer: int = 0

    def __post_init__(self) -> None:
        start = self.history.first_day * DAY_MS
        self._next_funding = start + FUNDING_EVERY_MS
        self._next_transfer = start + 12 * 3_600_000
        self.trades = {s: [] for s in self.specs}

    # -- walking the clock ------------------------------------------------------------------------------------------
    def advance(self, now_ms: int) -> None:
        """Walk every trade, funding and transfer up to ``now_ms`` (idempotent; only forward)."""
        if now_ms <= self.until_ms:
            return
        self.history.ensure(now_ms)
        for order in self.history.orders[self._seen_orders :]:
            for t in self._order_trades(order):
                self._seq += 1
                heapq.heappush(self._pending, (t["time"], t["id"], self._seq, t))
        self._seen_orders = len(self.history.orders)
        while True:
            due = min(self._next_funding, self._next_transfer)
            trade_at = self._pending[0][0] if self._pending else None
            if trade_at is not None and trade_at <= now_ms and trade_at < due:
                self._book_trade(heapq.heappop(self._pending)[3])
            elif due <= now_ms:
                if self._next_funding <= self._next_transfer:
                    self._funding(self._next_funding)
                    self._next_funding += FUNDING_EVERY_MS
                else:
                    self._transfer(self._next_transfer)
                    self._next_transfer += TRANSFER_EVERY_MS
            else:
                break
        self.until_ms = now_ms

    def _order_trades(self, order: FuturesOrder) -> list[dict]:
        """The trades of every fill step of ``order`` (time, price, qty, commission; realized PnL comes later)."""
        sym = order.symbol
        _, pd, qd = self.specs[sym]
        rng = random.Random(f"orderlake-sandbox:{self.history.cfg.seed}:{self.history.market}:fills:{order.order_id}")
        precision = self.history.cfg.futures_time_precision_ms
        maker = order.static["type"] in ("LIMIT", "STOP", "TAKE_PROFIT") and order.static["timeInForce"] != "IOC"
        bnb = rng.random() < 0.2
        out: list[dict] = []
        before_qty, before_time = Decimal(0), order.time
        for v in order.versions:
            executed = Decimal(v["executedQty"])
            if executed <= before_qty:
                before_time = v["updateTime"]
                continue
            price = Decimal(v["cumQuote"]) / executed  # one price per order: avgPrice, exact
            units = int((executed - before_qty).scaleb(qd))
            parts = _split(rng, units)
            earlier = (
                max(before_time, v["updateTime"] - rng.randint(0, 2_000) // precision * precision) for _ in parts[:-1]
            )
            times = [*sorted(earlier), v["updateTime"]]
            for n, (part, at) in enumerate(zip(parts, times, strict=True)):
                qty = Decimal(part).scaleb(-qd)
                quote = price * qty
                fee = quote * (MAKER if maker and at > order.time else TAKER)
                if bnb:
                    fee = fee * BNB_DISCOUNT / Decimal(str(ASSETS["BNB"]))
                trade_id = self._trade_id(sym, at, order.order_id, n)
                out.append(
                    {
                        "buyer": order.static["side"] == "BUY",
                        "commission": _text(fee),
                        "commissionAsset": "BNB" if bnb else "USDT",
                        "id": trade_id,
                        "maker": maker and at > order.time,
                        "orderId": order.order_id,
                        "price": _fmt(price, pd),
                        "qty": _fmt(qty, qd),
                        "quoteQty": _fmt(quote, pd + qd),
                        "realizedPnl": "0",
                        "side": order.static["side"],
                        "positionSide": order.static["positionSide"],
                        "symbol": sym,
                        "time": at,
                    }
                )
            before_qty, before_time = executed, v["updateTime"]
        return out

    def _trade_id(self, symbol: str, at: int, order_id: int, n: int) -> int:
        seen = self._ids.setdefault(symbol, set())
        slot = (order_id * 7 + n * 131) % _ID_SLOTS
        trade_id = at * _ID_SLOTS + slot
        while trade_id in seen:  # two fills in one millisecond on one slot: the next free slot, deterministically
            trade_id += 1
        seen.add(trade_id)
        return trade_id

    def _book_trade(self, t: dict) -> None:
        key = (t["symbol"], t["positionSide"])
        pos = self.positions.setdefault(key, Position())
        qty = Decimal(t["qty"])
        realized = _q8(pos.fill(qty if t["side"] == "BUY" else -qty, Decimal(t["price"])))
        t["realizedPnl"] = _text(realized)
        bisect.insort(self.trades[t["symbol"]], t, key=lambda r: r["id"])
        tran = t["id"] % 10**13
        base = {"symbol": t["symbol"], "time": t["time"], "tranId": tran, "tradeId": str(t["id"])}
        if realized:
            self._add({**base, "incomeType": "REALIZED_PNL", "income": _text(realized), "asset": "USDT", "info": ""})
        fee = Decimal(t["commission"])
        if fee:
            self._add(
                {**base, "incomeType": "COMMISSION", "income": _text(-fee), "asset": t["commissionAsset"], "info": ""}
            )

    def _funding(self, at: int) -> None:
        for (sym, side), pos in sorted(self.positions.items()):
            if not pos.qty:
                continue
            rng = random.Random(f"orderlake-sandbox:{self.history.cfg.seed}:{self.history.market}:funding:{sym}:{at}")
            ref, _, _ = self.specs[sym]
            mark = Decimal(str(ref)) * (1 + Decimal(rng.randint(-300, 300)) / 10_000)
            rate = Decimal(rng.randint(-5, 20)) / 100_000
            amount = _q8(-pos.qty * mark * rate)
            if not amount:
                continue
            index = list(self.specs).index(sym) * 3 + ("BOTH", "LONG", "SHORT").index(side)
            self._add(
                {
                    "symbol": sym,
                    "incomeType": "FUNDING_FEE",
                    "income": _text(amount),
                    "asset": "USDT",
                    "info": "FUNDING_FEE",
                    "time": at,
                    "tranId": at // 1000 * 64 + index,
                    "tradeId": "",
                }
            )

    def _transfer(self, at: int) -> None:
        rng = random.Random(f"orderlake-sandbox:{self.history.cfg.seed}:{self.history.market}:transfer:{at}")
        self._add(
            {
                "symbol": "",
                "incomeType": "TRANSFER",
                "income": _text(Decimal(rng.randint(100, 5_000))),
                "asset": "USDT",
                "info": "TRANSFER",
                "time": at,
                "tranId": rng.randint(10**10, 10**11),
                "tradeId": "",
            }
        )

    def _add(self, record: dict) -> None:
        i = bisect.bisect_right(self.income_times, record["time"])
        self.income.insert(i, record)
        self.income_times.insert(i, record["time"])

    # -- reads ------------------------------------------------------------------------------------------------------
    def trades_between(self, symbol: str, lo: int, hi: int) -> list[dict]:
        rows = self.trades.get(symbol, [])
        return [t for t in rows if lo <= t["time"] <= hi]

    def income_between(self, lo: int, hi: int) -> list[dict]:
        i = bisect.bisect_left(self.income_times, lo)
        j = bisect.bisect_right(self.income_times, hi)
        return self.income[i:j]


def _fmt(value: Decimal, scale: int) -> str:
    """Binance's futures decimals: plain, at the symbol's scale (exact: the price times the quantity fits)."""
    return f"{value.quantize(Decimal(1).scaleb(-scale)):f}"


def _split(rng: random.Random, units: int) -> list[int]:
    n = min(units, 1 if rng.random() < 0.6 else rng.randint(2, 3))
    if n <= 1:
        return [units]
    cuts = sorted(rng.sample(range(1, units), n - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, units], strict=True)]

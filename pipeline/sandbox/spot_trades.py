"""The sandbox's spot trades, derived from its spot orders, and the ``myTrades`` answer rules.

Every order with an executed quantity gets one or more fills whose quantities add up to ``executedQty`` and whose
``quoteQty`` add up to ``cummulativeQuoteQty`` exactly; a MARKET order's fills are the price levels it swept. Fills lie
between the order's creation (or ``workingTime``) and its last update; a FILLED or PARTIALLY_FILLED order's last fill
is at ``updateTime``, a CANCELED/EXPIRED one's before it. The commission is charged in BNB, in the asset received
(base on a buy, quote on a sell) or is zero (zero-fee pairs). Trade ids grow with time within a symbol, with gaps for
other users' trades. The trades come from their own random stream, so the orders (and every test that reads them)
are the same with or without them. Answer rules: docs/binance-facts.md §Spot myTrades.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field

from pipeline.binance import facts
from pipeline.sandbox.books import SpotBook, SpotSymbol, fmt8
from pipeline.sandbox.universe import ASSETS, QUOTES

STANDARD_RATE_BP = 10  # 0.1 % of what is received (docs/binance-facts.md §Spot myTrades)
BNB_RATE_BP = 7.5  # 25 % off when paid in BNB
ZERO_FEE_QUOTES = ("FDUSD",)  # pairs traded without a fee in the sandbox


@dataclass
class SpotTrades:
    """One symbol's trades (the account's side of each), indexed the ways ``myTrades`` reads them."""

    symbol: str
    trades: list[dict] = field(default_factory=list)  # ascending id (= ascending time)
    ids: list[int] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    by_order: dict[int, list[dict]] = field(default_factory=dict)

    def index(self) -> None:
        self.trades.sort(key=lambda t: t["id"])
        self.ids = [t["id"] for t in self.trades]
        self.times = [t["time"] for t in self.trades]
        self.by_order = {}
        for t in self.trades:
            self.by_order.setdefault(t["orderId"], []).append(t)

    def from_id(self, from_id: int, limit: int) -> list[dict]:
        i = bisect.bisect_left(self.ids, from_id)
        return self.trades[i : i + limit]

    def of_order(self, order_id: int, from_id: int | None, limit: int) -> list[dict]:
        rows = self.by_order.get(order_id, [])
        if from_id is not None:
            rows = [t for t in rows if t["id"] >= from_id]
        return rows[:limit]

    def between(self, start: int | None, end: int | None, limit: int) -> list[dict]:
        """Oldest first from ``start`` (not past ``end``); with ``end`` alone, the newest up to ``end``."""
        if start is None and end is not None:
            j = bisect.bisect_right(self.times, end)
            return self.trades[max(0, j - limit) : j]
        i = bisect.bisect_left(self.times, start or 0)
        j = bisect.bisect_right(self.times, end) if end is not None else len(self.trades)
        return self.trades[i : min(j, i + limit)]

    def recent(self, limit: int) -> list[dict]:
        return self.trades[-limit:]


def generate_spot_trades(
    seed: int, symbols: dict[str, SpotSymbol], books: dict[str, SpotBook]
) -> dict[str, SpotTrades]:
    """Trades of every symbol that has orders (delisted pairs too: the truth holds them, REST cannot reach them)."""
    out = {}
    for name in sorted(books):
        rng = random.Random(f"orderlake-sandbox:{seed}:spot-trades:{name}")
        fills: list[dict] = []
        for order in books[name].orders:
            fills += _order_fills(rng, symbols[name], order)
        fills.sort(key=lambda t: (t["time"], t["orderId"], t["_seq"]))
        book = SpotTrades(name)
        trade_id = rng.randint(10**6, 10**9)
        for t in fills:
            trade_id += rng.randint(1, 400)  # other users' trades in between
            t.pop("_seq")
            book.trades.append({"symbol": name, "id": trade_id, **t})
        book.index()
        out[name] = book
    return out


def _units(text: str, scale: int) -> int:
    whole, _, frac = text.partition(".")
    return int(whole) * 10**scale + int((frac + "0" * scale)[:scale] or "0")


def _order_fills(rng: random.Random, s: SpotSymbol, order: dict) -> list[dict]:
    executed = _units(order["executedQty"], s.qd)
    if executed <= 0:
        return []
    quote_scale = s.pd + s.qd
    cum = _units(order["cummulativeQuoteQty"], quote_scale)
    if order["type"] == "MARKET":
        parts = _market_levels(cum, executed, s)
    else:
        price = _units(order["price"], s.pd)
        parts = [(price, q) for q in _split(rng, executed)]
    start = order["workingTime"] if order.get("workingTime", -1) > 0 else order["time"]
    end = order["updateTime"]
    last_at_update = order["status"] in ("FILLED", "PARTIALLY_FILLED")
    times = _times(rng, start, end, len(parts), last_at_update)
    buyer = order["side"] == "BUY"
    asset = _commission_asset(rng, s, buyer)
    fills = []
    for seq, ((price, qty), at) in enumerate(zip(parts, times, strict=True)):
        quote = price * qty
        maker = order["type"] == "LIMIT_MAKER" or (
            order["type"] != "MARKET" and at > order["time"] + 1000 and rng.random() < 0.8
        )
        fills.append(
            {
                "orderId": order["orderId"],
                "orderListId": order["orderListId"],
                "price": fmt8(price, s.pd),
                "qty": fmt8(qty, s.qd),
                "quoteQty": fmt8(quote, quote_scale),
                "commission": fmt8(_commission(s, asset, qty, quote), 8),
                "commissionAsset": asset,
                "time": at,
                "isBuyer": buyer,
                "isMaker": maker,
                "isBestMatch": True,
                "_seq": seq,
            }
        )
    return fills


def _market_levels(cum: int, executed: int, s: SpotSymbol) -> list[tuple[int, int]]:
    """The (price, qty) levels a MARKET order swept: prices p, p+1, p+2 ticks whose value adds up to ``cum``.

    The spot history prices a sweep as ``sum((p + k) * part_k)``; any split with the same total is as exact."""
    base, excess = divmod(cum, executed)
    if excess == 0:
        return [(base, executed)]
    # cum = base * executed + excess with 0 < excess < executed: `excess` units one tick higher
    return [(base, executed - excess), (base + 1, excess)]


def _split(rng: random.Random, units: int) -> list[int]:
    """1 to 6 fills (most orders one or two), never a zero quantity."""
    r = rng.random()
    n = 1 if r < 0.5 else 2 if r < 0.75 else 3 if r < 0.9 else rng.randint(4, 6)
    n = min(n, units)
    if n == 1:
        return [units]
    cuts = sorted(rng.sample(range(1, units), n - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, units], strict=True)]


def _times(rng: random.Random, start: int, end: int, n: int, last_at_end: bool) -> list[int]:
    """``n`` non-decreasing fill times in ``[start, end]``; the last one is ``end`` when the fill made the update."""
    hi = end if last_at_end else max(start, end - 1)
    if hi <= start:
        return [max(start, min(end, hi))] * n
    times = sorted(rng.randint(start, hi) for _ in range(n))
    if last_at_end:
        times[-1] = end
    return times


def _commission_asset(rng: random.Random, s: SpotSymbol, buyer: bool) -> str:
    if s.quote in ZERO_FEE_QUOTES:
        return s.base if buyer else s.quote
    return "BNB" if rng.random() < 0.4 else (s.base if buyer else s.quote)


def _commission(s: SpotSymbol, asset: str, qty: int, quote: int) -> int:
    """The fee in units of 1e-8 of ``asset``, rounded down to 8 decimals (at least 1e-8 unless the pair is free)."""
    if s.quote in ZERO_FEE_QUOTES:
        return 0
    if asset == s.base:
        fee = qty * 10 ** (8 - s.qd) * STANDARD_RATE_BP // 10_000
    elif asset == s.quote:
        fee = quote * 10 ** (8 - s.pd - s.qd) * STANDARD_RATE_BP // 10_000
    else:  # BNB at the reference price
        quote_usd = QUOTES[s.quote] * quote / 10 ** (s.pd + s.qd)
        fee = int(quote_usd / ASSETS["BNB"] * BNB_RATE_BP / 10_000 * 10**8)
    return max(fee, 1)


def my_trades_weight(params: dict[str, str]) -> int:
    """20, or 5 with ``orderId`` (docs/binance-facts.md §Spot myTrades)."""
    key = "my_trades_order" if params.get("orderId") else "my_trades"
    return facts.SPOT_WEIGHTS[key]


# The parameter sets myTrades accepts besides symbol/limit (docs/binance-facts.md §Spot myTrades); -1128 otherwise.
SUPPORTED_COMBINATIONS = frozenset(
    frozenset(c)
    for c in (
        (),
        ("orderId",),
        ("startTime",),
        ("endTime",),
        ("fromId",),
        ("startTime", "endTime"),
        ("orderId", "fromId"),
    )
)

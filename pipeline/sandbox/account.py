"""Deterministic generation of the sandbox account (spot orders, OCO lists, USDⓈ-M and PM UM futures orders).

Everything is derived from ``SandboxConfig.seed`` and ``now_ms``. Money is exact: prices and quantities are
integers on a decimal tick (price decimals + quantity decimals <= 8), so every product (cummulativeQuoteQty,
cumQuote) is exact and formats as a decimal string without rounding.
"""

from __future__ import annotations

import base64
import bisect
import random
from dataclasses import dataclass, field
from typing import Any

from pipeline.binance.facts import SPOT_ZERO_FILL_ARCHIVE_DAYS
from pipeline.sandbox.config import SandboxConfig
from pipeline.times import DAY_MS

OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
ARCHIVABLE = ("CANCELED", "EXPIRED", "EXPIRED_IN_MATCH")

# base asset -> USD price (realistic magnitudes, from BTC ~ 60000 down to sub-satoshi meme coins)
ASSETS: dict[str, float] = {
    "BTC": 62000,
    "ETH": 3100,
    "BNB": 580,
    "SOL": 150,
    "XRP": 0.52,
    "ADA": 0.45,
    "DOGE": 0.14,
    "TRX": 0.12,
    "DOT": 6.8,
    "POL": 0.7,
    "LTC": 80,
    "SHIB": 0.00002345,
    "AVAX": 35,
    "LINK": 15,
    "ATOM": 8.5,
    "UNI": 9.5,
    "XLM": 0.11,
    "ETC": 27,
    "FIL": 5.5,
    "ICP": 12,
    "APT": 9,
    "ARB": 1.1,
    "OP": 2.4,
    "NEAR": 6,
    "VET": 0.035,
    "ALGO": 0.18,
    "HBAR": 0.09,
    "QNT": 100,
    "AAVE": 95,
    "GRT": 0.25,
    "SAND": 0.45,
    "MANA": 0.45,
    "AXS": 7.5,
    "EGLD": 40,
    "THETA": 2.1,
    "XTZ": 0.95,
    "EOS": 0.8,
    "FTM": 0.7,
    "FLOW": 0.9,
    "CHZ": 0.12,
    "CRV": 0.45,
    "KAVA": 0.7,
    "RUNE": 5,
    "MKR": 2800,
    "SNX": 3,
    "COMP": 55,
    "ZEC": 25,
    "DASH": 30,
    "NEO": 15,
    "IOTA": 0.25,
    "ENJ": 0.3,
    "ZIL": 0.025,
    "BAT": 0.25,
    "ONE": 0.02,
    "HOT": 0.0025,
    "WIN": 0.0001,
    "BTTC": 0.0000012,
    "PEPE": 0.0000123,
    "FLOKI": 0.00018,
    "BONK": 0.000025,
    "WIF": 2.5,
    "JUP": 1.0,
    "SUI": 1.1,
    "SEI": 0.5,
    "TIA": 9,
    "INJ": 25,
    "RENDER": 8,
    "FET": 2.1,
    "LDO": 2,
    "STX": 2,
    "IMX": 2.2,
    "GALA": 0.04,
    "APE": 1.3,
    "DYDX": 2.2,
    "1INCH": 0.4,
    "SUSHI": 1.1,
    "YFI": 7500,
    "CAKE": 2.5,
    "TWT": 1.1,
    "CELO": 0.8,
    "ROSE": 0.1,
    "KSM": 30,
    "WOO": 0.3,
    "JASMY": 0.02,
    "LUNC": 0.0001,
    "USTC": 0.02,
    "PAXG": 2350,
    "WBTC": 62000,
    "ORDI": 40,
    "ENA": 0.9,
    "PENDLE": 5,
    "TON": 6.5,
    "NOT": 0.015,
    "ZRO": 3.5,
    "BOME": 0.01,
    "ETHFI": 3.5,
}
QUOTES: dict[str, float] = {"USDT": 1.0, "BTC": 62000, "ETH": 3100, "FDUSD": 1.0, "BNB": 580}
DELISTED_CANDIDATES = (
    ("NPXS", "USDT", 0.0012),
    ("BCHABC", "USDT", 230.0),
    ("VEN", "USDT", 1.9),
    ("MCO", "BTC", 0.00045),
    ("HC", "USDT", 1.3),
)

FUTURES_SYMBOLS: tuple[tuple[str, float, int, int], ...] = (  # symbol, price, price decimals, qty decimals
    ("BTCUSDT", 62000, 1, 3),
    ("ETHUSDT", 3100, 2, 3),
    ("SOLUSDT", 150, 2, 0),
    ("BNBUSDT", 580, 2, 2),
    ("XRPUSDT", 0.52, 4, 1),
    ("DOGEUSDT", 0.14, 5, 0),
    ("1000PEPEUSDT", 0.0123, 7, 0),
    ("LINKUSDT", 15, 3, 2),
    ("ADAUSDT", 0.45, 4, 0),
    ("AVAXUSDT", 35, 3, 0),
)


def fmt_units(units: int, scale: int, decimals: int | None = None) -> str:
    """Exact decimal string of ``units * 10**-scale`` with ``decimals`` (>= scale) fractional digits."""
    decimals = scale if decimals is None else decimals
    if decimals < scale:
        raise ValueError("would round")
    units *= 10 ** (decimals - scale)
    sign = "-" if units < 0 else ""
    units = abs(units)
    if decimals == 0:
        return f"{sign}{units}"
    q, r = divmod(units, 10**decimals)
    return f"{sign}{q}.{r:0{decimals}d}"


def fmt8(units: int, scale: int) -> str:
    """Spot format: always 8 decimals ("0.00100000")."""
    return fmt_units(units, scale, 8)


def _decimals_for(price: float, sig: int = 6) -> int:
    """Price decimals giving about ``sig`` significant digits, clamped to 0..8."""
    mag = 0
    p = price
    while p >= 10:
        p /= 10
        mag += 1
    while p < 1:
        p *= 10
        mag -= 1
    return max(0, min(8, sig - 1 - mag))


_B64_TO_ALNUM = str.maketrans("+/", "xQ")
_PREFIXES = ("", "", "web_", "and_", "ios_", "x-")


def _client_id(rng: random.Random) -> str:
    """22-character alphanumeric id, sometimes with an app prefix, like real clientOrderIds."""
    prefix = _PREFIXES[rng.getrandbits(8) % len(_PREFIXES)]
    raw = base64.b64encode(rng.getrandbits(144).to_bytes(18, "big")).decode().translate(_B64_TO_ALNUM)
    return prefix + raw[: 22 - len(prefix)]


@dataclass
class SpotSymbol:
    symbol: str
    base: str
    quote: str
    price: float  # reference price in quote units
    pd: int  # price decimals (tick 10**-pd)
    qd: int  # quantity decimals (step 10**-qd)
    listed: bool = True


@dataclass
class SpotBook:
    """Orders of one spot symbol with the indices allOrders/order need (bisect, not scans)."""

    symbol: str
    orders: list[dict] = field(default_factory=list)  # every order incl. archived, by orderId
    visible: list[dict] = field(default_factory=list)  # not archived, by orderId
    ids: list[int] = field(default_factory=list)  # orderIds of ``visible``
    by_update: list[dict] = field(default_factory=list)  # visible, by (updateTime, orderId)
    update_keys: list[int] = field(default_factory=list)
    by_id: dict[int, dict] = field(default_factory=dict)
    by_client: dict[str, dict] = field(default_factory=dict)
    archived_ids: set[int] = field(default_factory=set)

    def index(self) -> None:
        self.orders.sort(key=lambda o: o["orderId"])
        self.visible = [o for o in self.orders if o["orderId"] not in self.archived_ids]
        self.ids = [o["orderId"] for o in self.visible]
        self.by_update = sorted(self.visible, key=lambda o: (o["updateTime"], o["orderId"]))
        self.update_keys = [o["updateTime"] for o in self.by_update]
        self.by_id = {o["orderId"]: o for o in self.orders}
        self.by_client = {o["clientOrderId"]: o for o in self.orders}

    def from_id(self, order_id: int, limit: int) -> list[dict]:
        i = bisect.bisect_left(self.ids, order_id)
        return self.visible[i : i + limit]

    def recent(self, limit: int) -> list[dict]:
        return self.visible[-limit:] if limit else []

    def updated_between(self, lo: int, hi: int, limit: int) -> list[dict]:
        i = bisect.bisect_left(self.update_keys, lo)
        j = bisect.bisect_right(self.update_keys, hi)
        return self.by_update[i : min(j, i + limit)]

    def updated_until(self, hi: int, limit: int) -> list[dict]:
        j = bisect.bisect_right(self.update_keys, hi)
        return self.by_update[max(0, j - limit) : j]


@dataclass
class FuturesBook:
    """One futures market's orders ("usdm" or "pm_um"), sorted by (time, orderId), plus per-symbol views."""

    market: str
    orders: list[dict] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    per_symbol: dict[str, list[dict]] = field(default_factory=dict)
    per_symbol_times: dict[str, list[int]] = field(default_factory=dict)
    per_symbol_ids: dict[str, list[int]] = field(default_factory=dict)

    def index(self) -> None:
        self.orders.sort(key=lambda o: (o["time"], o["orderId"]))
        self.times = [o["time"] for o in self.orders]
        self.per_symbol = {}
        for o in self.orders:
            self.per_symbol.setdefault(o["symbol"], []).append(o)
        self.per_symbol_times = {s: [o["time"] for o in rows] for s, rows in self.per_symbol.items()}
        self.per_symbol_ids = {s: [o["orderId"] for o in rows] for s, rows in self.per_symbol.items()}


@dataclass
class Account:
    cfg: SandboxConfig
    now_ms: int
    symbols: dict[str, SpotSymbol]  # listed AND delisted (delisted have listed=False)
    listed: list[str]
    active: list[str]
    hidden_active: list[str]
    delisted: list[str]
    books: dict[str, SpotBook]
    order_lists: list[dict]
    balances: list[dict]
    usdm: FuturesBook
    pm_um: FuturesBook
    busy_day: dict[str, Any]
    list_times: list[int] = field(default_factory=list)
    lists_by_time: list[dict] = field(default_factory=list)
    list_ids: list[int] = field(default_factory=list)
    list_by_id: dict[int, dict] = field(default_factory=dict)
    list_by_client: dict[str, dict] = field(default_factory=dict)

    def index_lists(self) -> None:
        self.order_lists.sort(key=lambda r: r["orderListId"])
        self.list_ids = [r["orderListId"] for r in self.order_lists]
        self.lists_by_time = sorted(self.order_lists, key=lambda r: (r["transactionTime"], r["orderListId"]))
        self.list_times = [r["transactionTime"] for r in self.lists_by_time]
        self.list_by_id = {r["orderListId"]: r for r in self.order_lists}
        self.list_by_client = {r["listClientOrderId"]: r for r in self.order_lists}

    def is_archived(self, order: dict) -> bool:
        book = self.books.get(order["symbol"])
        return bool(book and order["orderId"] in book.archived_ids)


# ----------------------------------------------------------------------------------------------------------------
# spot


class _SpotGen:
    def __init__(self, cfg: SandboxConfig, now_ms: int) -> None:
        self.cfg = cfg
        self.now = now_ms
        self.rng = random.Random(f"orderlake-sandbox:{cfg.seed}:spot")
        self.start = now_ms - cfg.history_days * DAY_MS

    # -- symbols ---------------------------------------------------------------------------------------------
    def symbols(self) -> tuple[dict[str, SpotSymbol], list[str], list[str], list[str]]:
        rng = self.rng
        assets = dict(ASSETS)
        n = 0
        while len(assets) * len(QUOTES) - len(QUOTES) < self.cfg.listed_symbols + 10:  # huge configs
            n += 1
            assets[f"TK{n:03d}"] = round(10 ** rng.uniform(-5, 2), 8)
        combos: list[SpotSymbol] = []
        for base, usd in assets.items():
            for quote, qusd in QUOTES.items():
                if base == quote:
                    continue
                price = usd / qusd
                if price < 1e-8 * 100:  # not representable with 8 decimals and sensible precision
                    continue
                pd = _decimals_for(price)
                want_qd = max(0, min(8, _decimals_for(1.0 / max(usd, 1e-9), 2)))
                qd = max(0, min(want_qd, 8 - pd))
                combos.append(SpotSymbol(base + quote, base, quote, price, pd, qd))
        by_name = {s.symbol: s for s in combos}
        must = [
            s
            for s in (
                "BTCUSDT",
                "ETHUSDT",
                "BNBUSDT",
                "SOLUSDT",
                "ETHBTC",
                "DOGEUSDT",
                "XRPUSDT",
                "PEPEUSDT",
                "LINKBTC",
                "ADAFDUSD",
                "AVAXUSDT",
                "SHIBUSDT",
            )
            if s in by_name
        ]
        rest = [s for s in by_name if s not in must]
        rng.shuffle(rest)
        listed = (must + rest)[: self.cfg.listed_symbols]
        listed_sorted = sorted(listed)
        n_active = min(self.cfg.active_symbols, len(listed))
        pool = [s for s in listed if s not in must[:4]]
        active = must[: min(4, n_active)] + rng.sample(pool, n_active - min(4, n_active))
        symbols = {s: by_name[s] for s in listed}
        delisted: list[str] = []
        if self.cfg.delisted_symbol:
            for base, quote, price in DELISTED_CANDIDATES:
                if base not in assets:
                    pd = _decimals_for(price)
                    qd = max(0, min(_decimals_for(1.0 / (price * QUOTES[quote]), 2), 8 - pd))
                    sym = SpotSymbol(base + quote, base, quote, price, pd, qd, listed=False)
                    symbols[sym.symbol] = sym
                    delisted.append(sym.symbol)
                    break
        return symbols, listed_sorted, active, delisted

    # -- orders ----------------------------------------------------------------------------------------------
    def _qty(self, s: SpotSymbol) -> int:
        usd_value = 10 ** self.rng.uniform(1.0, 3.4)  # 10 .. 2500 USD
        qty = usd_value / (s.price * QUOTES[s.quote])
        return max(1, round(qty * 10**s.qd))

    def _price(self, s: SpotSymbol, t: int) -> int:
        wave = 1 + 0.12 * ((t // DAY_MS) % 17 - 8) / 8  # slow drift, deterministic per day
        p = s.price * wave * self.rng.uniform(0.98, 1.02)
        return max(1, round(p * 10**s.pd))

    def _fills(self, s: SpotSymbol, price: int, qty: int, market: bool) -> int:
        """Quote amount (scale pd+qd) of fills totalling ``qty``; market orders sweep 1-3 price levels."""
        if qty == 0:
            return 0
        if not market:
            return price * qty
        parts = self.rng.randint(1, min(3, qty))
        cuts = sorted(self.rng.sample(range(1, qty), parts - 1)) if parts > 1 else []
        total, prev = 0, 0
        for k, cut in enumerate([*cuts, qty]):
            total += (price + k) * (cut - prev)
            prev = cut
        return total

    def _later_update(self, t: int) -> int:
        day = t // DAY_MS
        k = self.rng.randint(1, 3)
        return (day + k) * DAY_MS + self.rng.randint(0, DAY_MS - 1)

    def order(self, s: SpotSymbol, t: int, *, busy: bool = False, kind: str | None = None) -> dict:
        rng = self.rng
        r = rng.random()
        otype = kind or (
            "LIMIT"
            if r < 0.5
            else "MARKET"
            if r < 0.75
            else "LIMIT_MAKER"
            if r < 0.87
            else "STOP_LOSS_LIMIT"
            if r < 0.95
            else "TAKE_PROFIT_LIMIT"
        )
        side = "BUY" if rng.random() < 0.5 else "SELL"
        qty = self._qty(s)
        price = self._price(s, t)
        tif = "GTC"
        if otype == "LIMIT":
            tif = rng.choices(("GTC", "IOC", "FOK"), (0.85, 0.1, 0.05))[0]
        executed, status, update = qty, "FILLED", t + rng.randint(0, 2500)
        expiry = None
        recent = t > self.now - 12 * DAY_MS
        roll = rng.random()
        if otype == "MARKET":
            if roll < 0.03:
                executed, status, expiry = rng.randint(1, qty), "EXPIRED", "INSUFFICIENT_LIQUIDITY"
                executed = min(executed, qty)
        elif tif in ("IOC", "FOK"):
            if roll < 0.3:
                executed, status = 0, "EXPIRED"
                expiry = "UNFILLED_IOC_QUANTITY_EXPIRED" if tif == "IOC" else "UNFILLED_FOK_ORDER_EXPIRED"
        elif busy:
            if roll < 0.3:
                executed, status = 0, "CANCELED"
        else:
            if roll < 0.2:
                executed, status = 0, "CANCELED"
            elif roll < 0.25:
                executed, status = rng.randint(1, max(1, qty - 1)), "CANCELED"
            elif roll < 0.27:
                executed, status = 0, "EXPIRED_IN_MATCH"
            elif roll < 0.275:
                executed, status, update = 0, "REJECTED", t
            elif roll < 0.30 and otype == "LIMIT_MAKER":
                executed, status, expiry, update = 0, "EXPIRED", "REJECTED", t
            elif recent and roll < 0.33:
                executed, status, update = 0, "NEW", t
            elif recent and roll < 0.345 and qty > 1:
                executed, status = rng.randint(1, qty - 1), "PARTIALLY_FILLED"
            if status in ("FILLED", "CANCELED", "EXPIRED_IN_MATCH", "PARTIALLY_FILLED") and rng.random() < 0.18:
                update = self._later_update(t)  # GTC order that lived into a later UTC day
        if update >= self.now:
            executed, status, update, expiry = 0, "NEW", t, None
        stop = 0
        trailing: tuple[int, int] | None = None
        is_working, working_time = True, t
        if otype in ("STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
            stop = max(1, round(price * (1.002 if side == "BUY" else 0.998)))
            if rng.random() < 0.2:
                trailing = (rng.choice((50, 100, 200, 300, 500)), 0)
            if status == "NEW":
                is_working, working_time = False, -1
            else:
                working_time = min(update, t + rng.randint(1, 60_000))
            if trailing:
                trailing = (trailing[0], -1 if status == "NEW" else working_time)
        quote_scale = s.pd + s.qd
        cum = self._fills(s, price, executed, otype == "MARKET")
        orig_quote = 0
        if otype == "MARKET" and side == "BUY" and rng.random() < 0.3 and executed:
            step = 10 ** max(0, quote_scale - (2 if s.quote in ("USDT", "FDUSD") else 6))
            orig_quote = -(-cum // step) * step  # quoteOrderQty rounded up to the quote's display step
            qty = executed if status == "FILLED" else qty
        order = {
            "symbol": s.symbol,
            "orderId": 0,
            "orderListId": -1,
            "clientOrderId": _client_id(rng),
            "price": "0.00000000" if otype == "MARKET" else fmt8(price, s.pd),
            "origQty": fmt8(qty, s.qd),
            "executedQty": fmt8(executed, s.qd),
            "cummulativeQuoteQty": fmt8(cum, quote_scale),
            "status": status,
            "timeInForce": tif,
            "type": otype,
            "side": side,
            "stopPrice": fmt8(stop, s.pd),
            "icebergQty": "0.00000000",
            "time": t,
            "updateTime": update,
            "isWorking": is_working,
            "workingTime": working_time,
            "origQuoteOrderQty": fmt8(orig_quote, quote_scale),
            "selfTradePreventionMode": "EXPIRE_MAKER" if rng.random() < 0.9 else "NONE",
        }
        if trailing:
            order["trailingDelta"], order["trailingTime"] = trailing
        if rng.random() < 0.04:
            order["strategyId"] = rng.randint(1, 10**8)
            order["strategyType"] = 1000000
        if status == "EXPIRED_IN_MATCH":
            order["preventedMatchId"] = rng.randint(0, 10**6)
            order["preventedQuantity"] = fmt8(qty, s.qd)
            expiry = "NONE"
        if expiry and rng.random() < 0.8:
            order["expiryReason"] = expiry
        return order

    def _legs(self, s: SpotSymbol, t: int, *kinds: str) -> list[dict]:
        """Plain orders to become list legs: without the conditional fields a list leg never carries here."""
        legs = [self.order(s, t, kind=kind) for kind in kinds]
        for leg in legs:
            for name in _LIST_LEG_DROPPED:
                leg.pop(name, None)
        return legs

    def _list(self, s: SpotSymbol, kind: str, list_status: str, order_status: str, tx: int) -> dict:
        """The order-list object; orderListId and orders are filled in by ``_list_ids``."""
        return {
            "orderListId": 0,
            "contingencyType": kind,
            "listStatusType": list_status,
            "listOrderStatus": order_status,
            "listClientOrderId": _client_id(self.rng),
            "transactionTime": tx,
            "symbol": s.symbol,
            "orders": [],
        }

    def oto(self, s: SpotSymbol, t: int) -> tuple[list[dict], dict]:
        """OTO list: a GTC LIMIT working order and a LIMIT_MAKER pending order that Binance only places once the
        working order is filled. Until then the pending leg is PENDING_NEW, not working, workingTime -1 — the one
        place where that status shows up in an order history."""
        rng = self.rng
        working, pending = self._legs(s, t, "LIMIT", "LIMIT_MAKER")
        pending["side"] = "SELL" if working["side"] == "BUY" else "BUY"
        zero = "0.00000000"
        for leg in (working, pending):
            leg.update(executedQty=zero, cummulativeQuoteQty=zero, origQuoteOrderQty=zero, timeInForce="GTC")
        done = t + rng.randint(1000, 6 * 3600_000)  # working order filled, or the list canceled
        roll = rng.random()
        if done >= self.now or (roll < 0.3 and t > self.now - 10 * DAY_MS):
            working.update(status="NEW", updateTime=t, isWorking=True, workingTime=t)
            pending.update(status="PENDING_NEW", updateTime=t, isWorking=False, workingTime=-1)
            return [working, pending], self._list(s, "OTO", "EXEC_STARTED", "EXECUTING", t)
        if roll < 0.75:
            working.update(
                status="FILLED",
                updateTime=done,
                executedQty=working["origQty"],
                cummulativeQuoteQty=_filled_quote(working["price"], working["origQty"]),
            )
            filled_at = done + rng.randint(1000, 2 * DAY_MS)
            pending.update(isWorking=True, workingTime=done, status="NEW", updateTime=done)
            if filled_at < self.now:
                pending.update(
                    status="FILLED",
                    updateTime=filled_at,
                    executedQty=pending["origQty"],
                    cummulativeQuoteQty=_filled_quote(pending["price"], pending["origQty"]),
                )
        else:
            working.update(status="CANCELED", updateTime=done)
            pending.update(status="CANCELED", updateTime=done, isWorking=False, workingTime=-1)
        return [working, pending], self._list(s, "OTO", "ALL_DONE", "ALL_DONE", done)

    def oco(self, s: SpotSymbol, t: int) -> tuple[list[dict], dict]:
        """Two legs (LIMIT_MAKER + STOP_LOSS_LIMIT) and the list object; orderListId filled in later."""
        rng = self.rng
        a, b = self._legs(s, t, "LIMIT_MAKER", "STOP_LOSS_LIMIT")
        b["side"] = a["side"]
        b["origQty"] = a["origQty"]
        qty_text = a["origQty"]
        roll = rng.random()
        update = t + rng.randint(1000, 6 * 3600_000)
        if rng.random() < 0.2:
            update = self._later_update(t)
        if update >= self.now or (roll < 0.08 and t > self.now - 10 * DAY_MS):
            outcome = "open"
        else:
            outcome = "a" if roll < 0.5 else "b" if roll < 0.75 else "cancel"
        zero = "0.00000000"
        for leg in (a, b):
            leg.update(executedQty=zero, cummulativeQuoteQty=zero, origQuoteOrderQty=zero)
        if outcome == "open":
            for leg in (a, b):
                leg.update(status="NEW", updateTime=t)
            a.update(isWorking=True, workingTime=t)
            b.update(isWorking=False, workingTime=-1)
            list_status, order_status, tx = "EXEC_STARTED", "EXECUTING", t
        else:
            filled, other = (a, b) if outcome == "a" else (b, a)
            if outcome == "cancel":
                for leg in (a, b):
                    leg.update(status="CANCELED", updateTime=update)
            else:
                filled.update(
                    status="FILLED",
                    updateTime=update,
                    executedQty=qty_text,
                    cummulativeQuoteQty=_filled_quote(filled["price"], qty_text),
                )
                other.update(status="EXPIRED", updateTime=update)
                if rng.random() < 0.8:
                    other["expiryReason"] = "OCO_TRIGGER"
            b["isWorking"] = outcome == "b"
            b["workingTime"] = min(update, t + rng.randint(1, 60_000)) if outcome == "b" else -1
            list_status, order_status, tx = "ALL_DONE", "ALL_DONE", update
        return [a, b], self._list(s, "OCO", list_status, order_status, tx)

    def generate(
        self,
    ) -> tuple[dict[str, SpotSymbol], list[str], list[str], list[str], dict[str, SpotBook], list[dict], dict[str, Any]]:
        rng = self.rng
        symbols, listed, active, delisted = self.symbols()
        total = self.cfg.orders_per_day * self.cfg.history_days * len(active)
        weights = [1.0 / (k + 1) ** 0.8 for k in range(len(active))]
        wsum = sum(weights) or 1.0
        books: dict[str, SpotBook] = {}
        lists: list[tuple[list[dict], dict]] = []
        busy: dict[str, Any] = {}
        span_end = self.now - 60_000
        for k, sym in enumerate(active):
            s = symbols[sym]
            n = max(3, round(total * weights[k] / wsum))
            units: list[tuple[int, list[dict], dict | None]] = []
            for _ in range(n):
                t = rng.randint(self.start, span_end)
                roll = rng.random()
                if roll < 0.075:
                    legs, lst = self.oco(s, t) if roll < 0.06 else self.oto(s, t)
                    units.append((t, legs, lst))
                else:
                    units.append((t, [self.order(s, t)], None))
            if k == 0 and self.cfg.busy_day_orders > 0:
                day = max(self.start // DAY_MS + 1, (self.start + (self.now - self.start) // 3) // DAY_MS)
                if (day + 1) * DAY_MS > self.now - 4 * DAY_MS:
                    day = self.now // DAY_MS - 4
                day0 = day * DAY_MS
                for j in range(self.cfg.busy_day_orders + 1):
                    t = day0 + (j * (DAY_MS - 4000)) // (self.cfg.busy_day_orders + 1) + rng.randint(0, 900)
                    o = self.order(s, t, busy=True, kind=rng.choice(("LIMIT", "MARKET", "MARKET")))
                    o["updateTime"] = min(o["updateTime"], day0 + DAY_MS - 1)
                    units.append((t, [o], None))
                busy = {"symbol": sym, "day_start_ms": day0, "orders": self.cfg.busy_day_orders + 1}
            books[sym] = self._assign_ids(s, units, lists)
        for sym in delisted:
            s = symbols[sym]
            units = []
            for _ in range(max(5, int(self.cfg.orders_per_day * 5))):
                t = rng.randint(self.start, self.start + (self.now - self.start) // 2)
                o = self.order(s, t)
                if o["status"] in OPEN_STATUSES:
                    o.update(status="CANCELED", updateTime=t + 5000)
                units.append((t, [o], None))
            books[sym] = self._assign_ids(s, units, [])
        order_lists = self._list_ids(lists)
        for book in books.values():
            for o in book.orders:
                if (
                    o["status"] in ARCHIVABLE
                    and _is_zero(o["executedQty"])
                    and o["updateTime"] < self.now - SPOT_ZERO_FILL_ARCHIVE_DAYS * DAY_MS
                ):
                    book.archived_ids.add(o["orderId"])
            book.index()
        return symbols, listed, active, delisted, books, order_lists, busy

    def _assign_ids(
        self, s: SpotSymbol, units: list[tuple[int, list[dict], dict | None]], lists: list[tuple[list[dict], dict]]
    ) -> SpotBook:
        rng = self.rng
        units.sort(key=lambda u: u[0])
        next_id = rng.randint(10**8, 2 * 10**10)
        book = SpotBook(s.symbol)
        seen: set[str] = set()
        for _t, legs, lst in units:
            next_id += rng.randint(1, 5000)
            for leg in legs:
                while leg["clientOrderId"] in seen:
                    leg["clientOrderId"] = _client_id(rng)
                seen.add(leg["clientOrderId"])
                leg["orderId"] = next_id
                next_id += 1
                book.orders.append(leg)
            if lst is not None:
                lists.append((legs, lst))
        return book

    def _list_ids(self, lists: list[tuple[list[dict], dict]]) -> list[dict]:
        lists.sort(key=lambda p: (p[0][0]["time"], p[0][0]["symbol"], p[0][0]["orderId"]))
        list_id = self.rng.randint(10**5, 5 * 10**6)
        out = []
        for legs, lst in lists:
            list_id += self.rng.randint(1, 40)
            lst["orderListId"] = list_id
            lst["orders"] = [
                {"symbol": leg["symbol"], "orderId": leg["orderId"], "clientOrderId": leg["clientOrderId"]}
                for leg in sorted(legs, key=lambda x: x["orderId"])
            ]
            for leg in legs:
                leg["orderListId"] = list_id
            out.append(lst)
        return out

    def balances(self, symbols: dict[str, SpotSymbol], active: list[str]) -> tuple[list[dict], list[str]]:
        rng = self.rng
        bases = [symbols[s].base for s in active]
        quotes = {symbols[s].quote for s in active}
        hidden: list[str] = []
        for sym in reversed(active):
            if len(hidden) >= self.cfg.hidden_active_symbols:
                break
            b = symbols[sym].base
            if bases.count(b) == 1 and b not in quotes and b not in QUOTES:
                hidden.append(sym)
        hidden_bases = {symbols[s].base for s in hidden}
        held = [b for b in dict.fromkeys(bases + sorted(quotes)) if b not in hidden_bases]
        rows = []
        for asset in held:
            usd = ASSETS.get(asset, QUOTES.get(asset, 1.0))
            units = max(1, round(10 ** rng.uniform(1, 3.5) / usd * 10**8))
            locked = units // 10 if rng.random() < 0.3 else 0
            rows.append({"asset": asset, "free": fmt8(units - locked, 8), "locked": fmt8(locked, 8)})
        for asset in ("BETH", "ETHW", "LDUSDT"):  # dust / earn assets, not traded here
            rows.append({"asset": asset, "free": fmt8(rng.randint(1, 10**6), 8), "locked": "0.00000000"})
        for asset in ("NFT", "GAS"):
            rows.append({"asset": asset, "free": "0.00000000", "locked": "0.00000000"})
        rows.sort(key=lambda r: r["asset"])
        return rows, hidden


_LIST_LEG_DROPPED = (
    "trailingDelta",
    "trailingTime",
    "strategyId",
    "strategyType",
    "preventedMatchId",
    "preventedQuantity",
    "expiryReason",
)


def _filled_quote(price: str, qty: str) -> str:
    """cummulativeQuoteQty of a leg filled at its limit price: exact (price and qty decimals add up to <= 8)."""
    return fmt_units(_parse_units(price, 8) * _parse_units(qty, 8) // 10**8, 8, 8)


def _parse_units(text: str, scale: int) -> int:
    whole, _, frac = text.partition(".")
    frac = (frac + "0" * scale)[:scale]
    return int(whole) * 10**scale + int(frac or "0")


def _is_zero(text: str) -> bool:
    return text.strip("0.") == ""


# ----------------------------------------------------------------------------------------------------------------
# futures


def _futures_orders(cfg: SandboxConfig, now_ms: int, market: str, per_day: float) -> FuturesBook:
    rng = random.Random(f"orderlake-sandbox:{cfg.seed}:{market}")
    book = FuturesBook(market)
    symbols = FUTURES_SYMBOLS if market == "usdm" else FUTURES_SYMBOLS[:6]
    start_s = (now_ms - cfg.futures_history_days * DAY_MS) // 1000
    end_s = (now_ms - 60_000) // 1000
    n = max(10, round(per_day * cfg.futures_history_days))
    weights = [1.0 / (k + 1) for k in range(len(symbols))]
    picks = rng.choices(range(len(symbols)), weights, k=n)
    per_symbol: dict[int, list[int]] = {}
    for k in picks:
        per_symbol.setdefault(k, []).append(rng.randint(start_s, end_s) * 1000)
    id_base = 8389765568816714211 if market == "usdm" else 8389766012345678901
    for k, times in sorted(per_symbol.items()):
        sym, price, pd, qd = symbols[k]
        next_id = id_base - rng.randint(10**11, 10**12) + k * 10**13
        for t in sorted(times):
            next_id += rng.randint(1, 10**8)
            book.orders.append(_futures_order(rng, sym, price, pd, qd, t, now_ms, next_id))
    book.index()
    return book


def _futures_order(
    rng: random.Random, sym: str, ref: float, pd: int, qd: int, t: int, now_ms: int, order_id: int
) -> dict:
    r = rng.random()
    otype = (
        "LIMIT"
        if r < 0.45
        else "MARKET"
        if r < 0.75
        else "STOP_MARKET"
        if r < 0.83
        else "TAKE_PROFIT_MARKET"
        if r < 0.88
        else "STOP"
        if r < 0.93
        else "TAKE_PROFIT"
        if r < 0.97
        else "TRAILING_STOP_MARKET"
    )
    side = "BUY" if rng.random() < 0.5 else "SELL"
    price = max(1, round(ref * rng.uniform(0.8, 1.2) * 10**pd))
    qty = max(1, round(10 ** rng.uniform(1.5, 3.7) / ref * 10**qd))
    tif = "GTC"
    if otype in ("LIMIT", "STOP", "TAKE_PROFIT"):
        tif = rng.choices(("GTC", "IOC", "FOK", "GTX", "GTD"), (0.7, 0.08, 0.04, 0.14, 0.04))[0]
    executed, status = qty, "FILLED"
    update_s = t // 1000 + rng.randint(0, 30)
    roll = rng.random()
    if otype == "MARKET":
        pass
    elif tif in ("IOC", "FOK", "GTX") and roll < 0.3:
        executed, status = 0, "EXPIRED"
    elif roll < 0.25:
        executed, status = 0, "CANCELED"
        update_s = t // 1000 + rng.randint(1, 7200)
    elif roll < 0.29:
        executed, status = rng.randint(1, max(1, qty - 1)), "CANCELED"
    elif roll < 0.31:
        executed, status = 0, "EXPIRED_IN_MATCH"
    elif roll < 0.315:
        executed, status, update_s = 0, "REJECTED", t // 1000
    elif t > now_ms - 10 * DAY_MS and roll < 0.34:
        executed, status, update_s = 0, "NEW", t // 1000
    elif t > now_ms - 10 * DAY_MS and roll < 0.35 and qty > 1:
        executed, status = rng.randint(1, qty - 1), "PARTIALLY_FILLED"
    if status not in ("NEW", "REJECTED") and otype != "MARKET" and rng.random() < 0.15:
        day = t // DAY_MS + rng.randint(1, 3)
        update_s = (day * DAY_MS + rng.randint(0, DAY_MS - 1)) // 1000
    if update_s * 1000 >= now_ms:
        executed, status, update_s = 0, "NEW", t // 1000
    fill_price = (
        price if otype in ("LIMIT", "STOP", "TAKE_PROFIT") else max(1, round(price * rng.uniform(0.999, 1.001)))
    )
    avg_dec = max(pd, 5)
    close_position = otype in ("STOP_MARKET", "TAKE_PROFIT_MARKET") and rng.random() < 0.2
    orig_qty = 0 if close_position and status in ("NEW", "CANCELED", "EXPIRED") and executed == 0 else qty

    def num(units: int, scale: int) -> str:
        return "0" if units == 0 else fmt_units(units, scale)

    stop = 0
    if otype in ("STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT"):
        stop = max(1, round(price * rng.uniform(0.97, 1.03)))
    order = {
        "avgPrice": fmt_units(fill_price if executed else 0, pd, avg_dec),
        "clientOrderId": _client_id(rng),
        "cumQuote": num(fill_price * executed, pd + qd),
        "executedQty": num(executed, qd),
        "orderId": order_id,
        "origQty": num(orig_qty, qd),
        "origType": otype,
        "price": num(price if otype in ("LIMIT", "STOP", "TAKE_PROFIT") else 0, pd),
        "reduceOnly": bool(close_position or rng.random() < 0.15),
        "side": side,
        "positionSide": rng.choices(("BOTH", "LONG", "SHORT"), (0.8, 0.1, 0.1))[0],
        "status": status,
        "stopPrice": num(stop, pd),
        "closePosition": close_position,
        "symbol": sym,
        "time": t,
        "timeInForce": tif,
        "type": otype,
    }
    if otype == "TRAILING_STOP_MARKET":
        order["activatePrice"] = fmt_units(price, pd)
        order["priceRate"] = fmt_units(rng.randint(1, 50), 1)
    order.update(
        {
            "updateTime": update_s * 1000,
            "workingType": "MARK_PRICE" if rng.random() < 0.3 else "CONTRACT_PRICE",
            "priceProtect": rng.random() < 0.2,
            "priceMatch": "NONE" if rng.random() < 0.9 else rng.choice(("OPPONENT", "QUEUE", "QUEUE_5")),
            "selfTradePreventionMode": "EXPIRE_MAKER" if rng.random() < 0.8 else "NONE",
            "goodTillDate": (t // 1000 + 86400) * 1000 if tif == "GTD" else 0,
        }
    )
    return order


def generate_account(cfg: SandboxConfig, now_ms: int) -> Account:
    gen = _SpotGen(cfg, now_ms)
    symbols, listed, active, delisted, books, order_lists, busy = gen.generate()
    balances, hidden = gen.balances(symbols, active)
    acct = Account(
        cfg=cfg,
        now_ms=now_ms,
        symbols=symbols,
        listed=listed,
        active=active,
        hidden_active=hidden,
        delisted=delisted,
        books=books,
        order_lists=order_lists,
        balances=balances,
        usdm=_futures_orders(cfg, now_ms, "usdm", cfg.futures_orders_per_day),
        pm_um=_futures_orders(cfg, now_ms, "pm_um", cfg.pm_orders_per_day),
        busy_day=busy,
    )
    acct.index_lists()
    return acct

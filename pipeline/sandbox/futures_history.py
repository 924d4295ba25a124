"""Deterministic USDⓈ-M and Portfolio-Margin UM order timelines of the sandbox account.

Each order is generated once, with its whole life: created ``NEW``, maybe ``PARTIALLY_FILLED``, then ``FILLED``,
``CANCELED``, ``EXPIRED``, ``EXPIRED_IN_MATCH`` or ``REJECTED``, each step with its update time (or still open).
Every surface reads an order *as of* the sandbox clock (:meth:`FuturesOrder.as_of`), so REST, the export files and
the truth agree at any instant, and advancing the clock makes orders progress and new ones appear.

Days are generated lazily from a per-(seed, market, day) random stream, so the account does not depend on when the
clock was advanced or how far: the same seed gives the same orders on the same days. Ids grow with creation time
within a symbol, as Binance's do ("orderId is self-increasing in the symbol dimension", see
docs/binance-facts.md §USDⓈ-M allOrders), and exceed 2^53. Design: docs/design/futures-rest.md §Sandbox history.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field

from pipeline.binance.facts import FUTURES_REST_RETENTION_DAYS, FUTURES_ZERO_FILL_RETENTION_DAYS
from pipeline.sandbox.books import client_id, fmt_units
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.universe import FUTURES_SYMBOLS
from pipeline.times import DAY_MS

OPEN = ("NEW", "PARTIALLY_FILLED")
ZERO_FILL_HIDDEN = ("CANCELED", "EXPIRED")  # hidden from REST 3 days after creation when nothing filled
_ID_BASE = {"usdm": 8_389_765_000_000_000_000, "pm_um": 8_389_766_000_000_000_000}
_SYMBOL_ID_STRIDE = 10**16  # per-symbol id space; ids inside it grow with creation time
_STATE_KEYS = ("status", "executedQty", "cumQuote", "avgPrice", "updateTime")
# Binance's field order of a futures order object (docs/binance-facts.md §Order objects)
_FIELD_ORDER = (
    "avgPrice",
    "clientOrderId",
    "cumQuote",
    "executedQty",
    "orderId",
    "origQty",
    "origType",
    "price",
    "reduceOnly",
    "side",
    "positionSide",
    "status",
    "stopPrice",
    "closePosition",
    "symbol",
    "time",
    "timeInForce",
    "type",
    "activatePrice",
    "priceRate",
    "updateTime",
    "workingType",
    "priceProtect",
    "priceMatch",
    "selfTradePreventionMode",
    "goodTillDate",
)


@dataclass(frozen=True)
class FuturesOrder:
    """One order: the fields that never change, and its states over time (ascending update time)."""

    static: dict
    versions: tuple[dict, ...]  # each: status, executedQty, cumQuote, avgPrice, updateTime

    @property
    def order_id(self) -> int:
        return self.static["orderId"]

    @property
    def symbol(self) -> str:
        return self.static["symbol"]

    @property
    def time(self) -> int:
        return self.static["time"]

    def state(self, now_ms: int) -> dict | None:
        """The changing fields as of ``now_ms``; None before the order exists."""
        if self.time > now_ms:
            return None
        current = self.versions[0]
        for v in self.versions[1:]:
            if v["updateTime"] > now_ms:
                break
            current = v
        return current

    def as_of(self, now_ms: int) -> dict | None:
        """The order object Binance would return at ``now_ms`` (ignoring REST retention)."""
        state = self.state(now_ms)
        if state is None:
            return None
        merged = {**self.static, **state}
        return {k: merged[k] for k in _FIELD_ORDER if k in merged}

    def rest_visible(self, now_ms: int) -> bool:
        """Whether REST still returns the order at ``now_ms`` (docs/binance-facts.md §Retention): created within 90
        days, and not a CANCELED/EXPIRED order without fill created more than 3 days ago."""
        state = self.state(now_ms)
        if state is None or self.time < now_ms - FUTURES_REST_RETENTION_DAYS * DAY_MS:
            return False
        zero = state["executedQty"].strip("0.") == ""
        old = self.time < now_ms - FUTURES_ZERO_FILL_RETENTION_DAYS * DAY_MS
        return not (state["status"] in ZERO_FILL_HIDDEN and zero and old)


@dataclass
class FuturesHistory:
    """One market's orders ("usdm" or "pm_um"), generated day by day up to the clock, indexed by creation time."""

    cfg: SandboxConfig
    market: str
    anchor_ms: int
    per_day: float
    symbols: tuple[tuple[str, float, int, int], ...]
    orders: list[FuturesOrder] = field(default_factory=list)  # by (time, orderId)
    times: list[int] = field(default_factory=list)
    per_symbol: dict[str, list[FuturesOrder]] = field(default_factory=dict)
    by_id: dict[tuple[str, int], FuturesOrder] = field(default_factory=dict)
    by_client_id: dict[tuple[str, str], FuturesOrder] = field(default_factory=dict)
    first_day: int = 0
    last_day: int = -1  # last generated day number (days since the epoch)

    def __post_init__(self) -> None:
        self.first_day = self.anchor_ms // DAY_MS - self.cfg.futures_history_days
        self.last_day = self.first_day - 1
        self.per_symbol = {s[0]: [] for s in self.symbols}

    @property
    def symbol_names(self) -> list[str]:
        return [s[0] for s in self.symbols]

    def ensure(self, now_ms: int) -> None:
        """Generate every day up to the one holding ``now_ms`` (orders later that day stay invisible until then)."""
        target = now_ms // DAY_MS
        if target <= self.last_day:
            return
        fresh: list[FuturesOrder] = []
        for day in range(self.last_day + 1, target + 1):
            fresh += self._day(day)
        self.last_day = target
        fresh.sort(key=lambda o: (o.time, o.order_id))
        self.orders += fresh
        self.times += [o.time for o in fresh]
        for o in fresh:
            self.per_symbol[o.symbol].append(o)
            self.by_id[(o.symbol, o.order_id)] = o
            self.by_client_id[(o.symbol, o.static["clientOrderId"])] = o

    def created_between(self, start: int, end: int, symbol: str | None = None) -> list[FuturesOrder]:
        """Orders created in ``[start, end]`` by (time, orderId)."""
        rows = self.per_symbol.get(symbol, []) if symbol else self.orders
        if symbol:
            keys = [o.time for o in rows]
            return rows[bisect.bisect_left(keys, start) : bisect.bisect_right(keys, end)]
        return rows[bisect.bisect_left(self.times, start) : bisect.bisect_right(self.times, end)]

    def orders_as_of(self, now_ms: int) -> list[dict]:
        """Every order created by ``now_ms`` in its state at ``now_ms``, by (time, orderId): what an export made at
        that instant holds, and the truth."""
        self.ensure(now_ms)
        out = []
        for o in self.orders[: bisect.bisect_right(self.times, now_ms)]:
            row = o.as_of(now_ms)
            if row is not None:
                out.append(row)
        return out

    def versions_until(self, now_ms: int) -> list[dict]:
        """Every state every order has had up to ``now_ms`` (the lake's versions table can hold a subset)."""
        self.ensure(now_ms)
        out = []
        for o in self.orders[: bisect.bisect_right(self.times, now_ms)]:
            out += [{**o.static, **v} for v in o.versions if v["updateTime"] <= now_ms]
        return out

    # -- generation -----------------------------------------------------------------------------------------------
    def _day(self, day: int) -> list[FuturesOrder]:
        rng = random.Random(f"orderlake-sandbox:{self.cfg.seed}:{self.market}:{day}")
        slots = max(1, round(2 * self.per_day))
        count = sum(rng.random() < self.per_day / slots for _ in range(slots))
        weights = [1.0 / (k + 1) for k in range(len(self.symbols))]
        precision = self.cfg.futures_time_precision_ms
        made: list[tuple[int, int]] = sorted(
            (_floor(day * DAY_MS + rng.randrange(DAY_MS), precision), rng.choices(range(len(self.symbols)), weights)[0])
            for _ in range(count)
        )
        out = []
        seq: dict[tuple[int, int], int] = {}
        for t, k in made:
            n = seq.get((k, t), 0)
            seq[(k, t)] = n + 1
            order_id = _ID_BASE[self.market] + k * _SYMBOL_ID_STRIDE + t * 16 + n
            out.append(self._order(rng, self.symbols[k], t, order_id))
        return out

    def _order(self, rng: random.Random, spec: tuple[str, float, int, int], t: int, order_id: int) -> FuturesOrder:
        sym, ref, pd, qd = spec
        otype = _order_type(rng.random())
        side = "BUY" if rng.random() < 0.5 else "SELL"
        price = max(1, round(ref * rng.uniform(0.8, 1.2) * 10**pd))
        qty = max(2, round(10 ** rng.uniform(1.5, 3.7) / ref * 10**qd))
        tif = "GTC"
        if otype in ("LIMIT", "STOP", "TAKE_PROFIT"):
            tif = rng.choices(("GTC", "IOC", "FOK", "GTX", "GTD"), (0.7, 0.08, 0.04, 0.14, 0.04))[0]
        good_till = _floor(t + DAY_MS, 1000) if tif == "GTD" else 0
        steps = _life(rng, otype, tif, qty, t, good_till, late_finals=self.cfg.futures_late_finals)
        fill_price = (
            price if otype in ("LIMIT", "STOP", "TAKE_PROFIT") else max(1, round(price * rng.uniform(0.999, 1.001)))
        )
        close_position = otype in ("STOP_MARKET", "TAKE_PROFIT_MARKET") and steps[-1][2] == 0 and rng.random() < 0.2
        stops = ("STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT")
        stop = max(1, round(price * rng.uniform(0.97, 1.03))) if otype in stops else 0
        static = {
            "clientOrderId": client_id(rng),
            "orderId": order_id,
            "origQty": "0" if close_position else _num(qty, qd),
            "origType": otype,
            "price": _num(price if otype in ("LIMIT", "STOP", "TAKE_PROFIT") else 0, pd),
            "reduceOnly": bool(close_position or rng.random() < 0.15),
            "side": side,
            "positionSide": rng.choices(("BOTH", "LONG", "SHORT"), (0.8, 0.1, 0.1))[0],
            "stopPrice": _num(stop, pd),
            "closePosition": close_position,
            "symbol": sym,
            "time": t,
            "timeInForce": tif,
            "type": otype,
            "workingType": "MARK_PRICE" if rng.random() < 0.3 else "CONTRACT_PRICE",
            "priceProtect": rng.random() < 0.2,
            "priceMatch": "NONE" if rng.random() < 0.9 else rng.choice(("OPPONENT", "QUEUE", "QUEUE_5")),
            "selfTradePreventionMode": "EXPIRE_MAKER" if rng.random() < 0.8 else "NONE",
            "goodTillDate": good_till,
        }
        if otype == "TRAILING_STOP_MARKET":
            static["activatePrice"] = fmt_units(price, pd)
            static["priceRate"] = fmt_units(rng.randint(1, 50), 1)
        precision = self.cfg.futures_time_precision_ms
        versions = []
        last = t
        for at, status, executed in steps:
            last = max(last, _floor(at, precision))
            versions.append(
                {
                    "status": status,
                    "executedQty": _num(executed, qd),
                    "cumQuote": _num(fill_price * executed, pd + qd),
                    "avgPrice": fmt_units(fill_price if executed else 0, pd, max(pd, 5)),
                    "updateTime": last,
                }
            )
        return FuturesOrder(static, tuple(versions))


def _order_type(r: float) -> str:
    for bound, name in (
        (0.45, "LIMIT"),
        (0.75, "MARKET"),
        (0.83, "STOP_MARKET"),
        (0.88, "TAKE_PROFIT_MARKET"),
        (0.93, "STOP"),
        (0.97, "TAKE_PROFIT"),
    ):
        if r < bound:
            return name
    return "TRAILING_STOP_MARKET"


def _lifetime(rng: random.Random) -> int:
    """How long a resting order stays open (ms): mostly minutes to hours, some days, a few weeks or months."""
    r = rng.random()
    if r < 0.55:
        return rng.randint(1_000, 2 * 3_600_000)
    if r < 0.80:
        return rng.randint(2 * 3_600_000, 2 * DAY_MS)
    if r < 0.93:
        return rng.randint(2 * DAY_MS, 12 * DAY_MS)
    if r < 0.99:
        return rng.randint(12 * DAY_MS, 100 * DAY_MS)
    return rng.randint(100 * DAY_MS, 200 * DAY_MS)


def _life(
    rng: random.Random, otype: str, tif: str, qty: int, t: int, good_till: int, *, late_finals: bool
) -> list[tuple[int, str, int]]:
    """(update time, status, executed units) from creation on; the last step is final unless it is open.

    ``late_finals`` off keeps every final state where REST can still show it: zero-fill ends within 2 days of
    creation and every end within 60 days (docs/binance-facts.md §Retention)."""
    if rng.random() < 0.005:
        return [(t, "REJECTED", 0)]
    new = (t, "NEW", 0)
    if otype == "MARKET":
        return [new, (t + rng.randint(1, 3_000), "FILLED", qty)]
    if tif in ("IOC", "FOK", "GTX"):
        end = t + rng.randint(1, 2_000)
        return [new, (end, "EXPIRED", 0)] if rng.random() < 0.3 else [new, (end, "FILLED", qty)]
    life = _lifetime(rng)
    outcome = rng.random()
    partial = rng.randint(1, qty - 1)
    if not late_finals:
        life = min(life, 2 * DAY_MS if outcome >= 0.55 and not 0.85 <= outcome < 0.90 else 60 * DAY_MS)
    end = t + life
    if good_till and end > good_till:
        return [new, (good_till, "EXPIRED", 0)]
    if outcome < 0.55:
        if rng.random() < 0.3:
            return [new, (t + life // 2, "PARTIALLY_FILLED", partial), (end, "FILLED", qty)]
        return [new, (end, "FILLED", qty)]
    if outcome < 0.85:
        return [new, (end, "CANCELED", 0)]
    if outcome < 0.90:
        return [new, (t + life // 2, "PARTIALLY_FILLED", partial), (end, "CANCELED", partial)]
    if outcome < 0.95:
        return [new, (end, "EXPIRED", 0)]
    if outcome < 0.97:
        return [new, (end, "EXPIRED_IN_MATCH", 0)]
    if outcome < 0.985 and rng.random() < 0.5:
        return [new, (t + life // 2, "PARTIALLY_FILLED", partial)]  # still partially filled, for good
    return [new]  # resting for good


def _num(units: int, scale: int) -> str:
    return "0" if units == 0 else fmt_units(units, scale)


def _floor(ms: int, precision: int) -> int:
    return ms - ms % precision


def futures_history(cfg: SandboxConfig, anchor_ms: int, market: str) -> FuturesHistory:
    """The market's history; PM trades the six busiest symbols only."""
    per_day = cfg.futures_orders_per_day if market == "usdm" else cfg.pm_orders_per_day
    symbols = FUTURES_SYMBOLS if market == "usdm" else FUTURES_SYMBOLS[:6]
    hist = FuturesHistory(cfg, market, anchor_ms, per_day, symbols)
    hist.ensure(anchor_ms)
    return hist

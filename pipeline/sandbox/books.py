"""The sandbox account's data: spot symbols, order books indexed the way allOrders / order / allOrderList read
them, futures histories, and exact decimal formatting (integers on a tick, so every product is exact)."""

from __future__ import annotations

import base64
import bisect
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.sandbox.config import SandboxConfig

if TYPE_CHECKING:
    from pipeline.sandbox.futures_history import FuturesHistory
    from pipeline.sandbox.spot_trades import SpotTrades

OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
ARCHIVABLE = ("CANCELED", "EXPIRED", "EXPIRED_IN_MATCH")


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


def decimals_for(price: float, sig: int = 6) -> int:
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


def client_id(rng: random.Random) -> str:
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
    usdm: FuturesHistory
    pm_um: FuturesHistory
    busy_day: dict[str, Any]
    spot_trades: dict[str, SpotTrades] = field(default_factory=dict)
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

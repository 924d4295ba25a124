"""Deterministic spot history of the sandbox account: listed, active and delisted pairs, orders of every type and
status, OCO/OTO lists, a busy day, archived zero-fill cancels and balances."""

from __future__ import annotations

import random
from typing import Any

from pipeline.binance.facts import SPOT_ZERO_FILL_ARCHIVE_DAYS
from pipeline.sandbox.books import (
    ARCHIVABLE,
    OPEN_STATUSES,
    SpotBook,
    SpotSymbol,
    client_id,
    decimals_for,
    fmt8,
    fmt_units,
)
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.universe import ASSETS, DELISTED_CANDIDATES, QUOTES
from pipeline.times import DAY_MS


class SpotHistory:
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
                pd = decimals_for(price)
                want_qd = max(0, min(8, decimals_for(1.0 / max(usd, 1e-9), 2)))
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
                    pd = decimals_for(price)
                    qd = max(0, min(decimals_for(1.0 / (price * QUOTES[quote]), 2), 8 - pd))
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
            "clientOrderId": client_id(rng),
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
            "listClientOrderId": client_id(self.rng),
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
                    leg["clientOrderId"] = client_id(rng)
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

"""Deterministic USDⓈ-M and Portfolio-Margin UM order history of the sandbox account (ids beyond 2^53, orders
updated days later)."""

from __future__ import annotations

import random

from pipeline.sandbox.books import FuturesBook, client_id, fmt_units
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.universe import FUTURES_SYMBOLS
from pipeline.times import DAY_MS


def futures_book(cfg: SandboxConfig, now_ms: int, market: str, per_day: float) -> FuturesBook:
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
            book.orders.append(futures_order(rng, sym, price, pd, qd, t, now_ms, next_id))
    book.index()
    return book


def futures_order(
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
        "clientOrderId": client_id(rng),
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

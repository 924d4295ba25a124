"""Which USDⓈ-M or PM UM symbols to ask ``allOrders`` about, from evidence, cheapest first.

First the measurement: one symbol-less ``allOrders`` call (USDⓈ-M; the 2026-08 change log calls ``symbol`` optional,
the page and the SDK require it, docs/binance-facts.md §USDⓈ-M allOrders). Served: no symbol list is needed at all.
Refused (-1102): remembered, and evidence decides: ``ORDERLAKE_FUTURES_SYMBOLS``, symbols the lake holds (REST and
export rows), positions and open orders from the account endpoint, and income records (each names its symbol; a
fill always has a commission). A listed symbol no evidence names could still hold orders that never filled; it is
probed once (``orderId`` from 1: its oldest order REST still keeps), the cost printed before. Design:
docs/design/futures-rest.md §Symbol discovery.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipeline.binance.errors import BadSymbol, InvalidParameter
from pipeline.binance.facts import FUTURES_ACCOUNT_WEIGHT, FUTURES_ALL_ORDERS_WEIGHT, FUTURES_INCOME_WEIGHT, PAGE_LIMIT
from pipeline.futures import state
from pipeline.futures.fetch import Cost
from pipeline.futures.orders_tail import SYMBOL_REQUIRED
from pipeline.futures.stored import latest_orders
from pipeline.storage.schemas import futures_orders
from pipeline.times import DAY_MS


class DiscoveryApi(Protocol):
    def all_orders(self, symbol: str | None = None, **kw: Any) -> list[dict]: ...
    def account(self) -> dict: ...
    def income(self, *, start_time: int, end_time: int, **kw: Any) -> list[dict]: ...


@dataclass
class FuturesDiscovery:
    symbols: list[str]
    symbolless: bool | None  # the measured answer (USDⓈ-M), None where not applicable
    evidence: dict[str, list[str]] = field(default_factory=dict)  # symbol -> why
    probed: list[str] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)

    def metadata(self) -> dict[str, Any]:
        return {
            "symbols": self.symbols,
            "symbolless": self.symbolless,
            "probed": len(self.probed),
            "discovery_weight": self.cost.weight,
        }


def measure_symbolless(api: DiscoveryApi, now_ms: int, cost: Cost, log: Callable[[str], None]) -> bool:
    """One symbol-less ``allOrders`` call over the last day (weight 5): served or refused."""
    log(f"usdm: measuring a symbol-less allOrders call (1 call, weight {FUTURES_ALL_ORDERS_WEIGHT})")
    cost.add("all_orders", FUTURES_ALL_ORDERS_WEIGHT)
    try:
        api.all_orders(None, start_time=now_ms - DAY_MS, end_time=now_ms, limit=1)
    except InvalidParameter as exc:
        if exc.code != SYMBOL_REQUIRED:
            raise
        return False
    return True


def discover_futures_symbols(
    api: DiscoveryApi,
    *,
    market: str,
    data_dir: str | Path,
    account: str,
    now_ms: int,
    since_ms: int,
    configured: Iterable[str] = (),
    listed: Iterable[str] = (),
    probe: bool = True,
    log: Callable[[str], None] = print,
) -> FuturesDiscovery:
    """The symbols to ask about for orders created since ``since_ms``; ``listed``: the contracts exchangeInfo lists
    (candidates for a probe)."""
    section = state.load(data_dir, account, market)
    cost = Cost()
    symbolless: bool | None = None
    if market == "usdm":
        symbolless = section.get("symbolless")
        if symbolless is None:
            symbolless = measure_symbolless(api, now_ms, cost, log)
        if symbolless:
            _save(data_dir, account, market, symbolless, [])
            return FuturesDiscovery([], True, cost=cost)
    evidence: dict[str, list[str]] = {}

    def note(symbols: Iterable[str], why: str) -> None:
        for s in symbols:
            if s:
                evidence.setdefault(s, []).append(why)

    note(configured, "ORDERLAKE_FUTURES_SYMBOLS")
    note({k[0] for k in latest_orders(data_dir, account, futures_orders.MARKETS[market])}, "lake")
    cost.add("account", FUTURES_ACCOUNT_WEIGHT)
    acct = api.account()
    note((p["symbol"] for p in acct.get("positions", [])), "position or open order")
    note(_income_symbols(api, max(since_ms, now_ms - 90 * DAY_MS), now_ms, cost), "income")
    probed_before = set(section.get("probed", {}))
    candidates = sorted(set(listed) - set(evidence) - probed_before)
    probed: list[str] = []
    if probe and candidates:
        log(
            f"{market}: probing {len(candidates)} listed symbol(s) no evidence names: {len(candidates)} call(s), "
            f"weight {len(candidates) * FUTURES_ALL_ORDERS_WEIGHT}"
        )
        for symbol in candidates:
            cost.add("probe", FUTURES_ALL_ORDERS_WEIGHT)
            try:
                rows = api.all_orders(symbol, order_id=1, limit=1)
            except BadSymbol:
                rows = []
            probed.append(symbol)
            if rows:
                note([symbol], "probe")
    _save(data_dir, account, market, symbolless, probed, now_ms)
    return FuturesDiscovery(sorted(evidence), symbolless, evidence, probed, cost)


def _income_symbols(api: DiscoveryApi, lo: int, hi: int, cost: Cost) -> set[str]:
    out: set[str] = set()
    a = lo
    while a <= hi:
        b = min(a + 7 * DAY_MS - 1, hi)
        page = 1
        while True:
            cost.add("income", FUTURES_INCOME_WEIGHT)
            rows = api.income(start_time=a, end_time=b, page=page, limit=PAGE_LIMIT)
            out |= {r.get("symbol", "") for r in rows}
            if len(rows) < PAGE_LIMIT:
                break
            page += 1
        a = b + 1
    return out


def _save(
    data_dir: str | Path, account: str, market: str, symbolless: bool | None, probed: list[str], now_ms: int = 0
) -> None:
    def change(section: dict) -> None:
        if symbolless is not None:
            section["symbolless"] = symbolless
        section.setdefault("probed", {}).update(dict.fromkeys(probed, now_ms))

    state.update(data_dir, account, market, change)

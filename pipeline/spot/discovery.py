"""Spot symbol discovery: decide which symbols to ask ``allOrders`` about, from evidence.

Evidence, cheapest first: balances matched to ``exchangeInfo`` pairs, symbols the lake holds, the configured spot
symbols (the only way to reach delisted pairs), and a full probe of every listed symbol (once per account by default,
its cost printed first). What it learns goes to the :class:`SymbolIndex`. Design:
docs/design/spot-planner.md §Discovery: which symbols to ask about.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pipeline.binance.facts import PAGE_LIMIT, SPOT_WEIGHTS, WEIGHT_PER_MINUTE
from pipeline.spot.common import (
    BAD_SYMBOL,
    INVALID_PARAMETER_CODES,
    BlindSpot,
    MeteredSpot,
    SpotApi,
    budget_per_minute,
    error_code,
    weight_delta,
)
from pipeline.spot.index import SymbolActivity, SymbolIndex

__all__ = ["COMMON_QUOTES", "DiscoveryResult", "SymbolIndex", "discover_symbols", "first_page"]

logger = logging.getLogger(__name__)

# Quote assets a held base asset is most likely traded against. A balance in ETH is evidence for ETHUSDT,
# ETHBTC, ...; a balance in USDT alone is not evidence for every *USDT pair (that would be hundreds).
COMMON_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "JPY")

# First orderId asked for by the probe and by cursors that start "at the beginning". Binance documents
# "orderId set: orders >= orderId"; real order ids start at 1, so 0 and 1 return the same page wherever 0 is
# accepted. If a server rejects 0 as an invalid parameter we retry once with 1 and remember it.
_start_id = {"value": 0}

ProbeMode = Literal["auto", "targeted"] | bool
SAVE_EVERY = 25  # probes between index checkpoints, so an interrupted full probe resumes instead of restarting


@dataclass
class DiscoveryResult:
    """Outcome of :func:`discover_symbols`.

    symbols: the candidate symbols for the planner (known to hold orders, or with evidence and not yet disproved).
    cost_weight: weight metered by us for this discovery; measured_weight: the client's own figure when a
    ``weight_used`` reader was given. Both are discovery costs, reported separately from backfill runs.
    """

    symbols: list[str]
    probed: int
    cost_weight: int
    blind_spots: list[BlindSpot]
    calls: dict[str, int] = field(default_factory=dict)
    measured_weight: int | None = None
    full_probe: bool = False
    estimate: dict[str, Any] = field(default_factory=dict)
    listed: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "symbols": self.symbols,
            "probed": self.probed,
            "full_probe": self.full_probe,
            "calls": self.calls,
            "cost_weight": self.cost_weight,
            "measured_weight": self.measured_weight,
            "listed": self.listed,
            "estimate": self.estimate,
            "blind_spots": [b.to_dict() for b in self.blind_spots],
        }


def first_page(api: MeteredSpot, symbol: str, limit: int = PAGE_LIMIT) -> list[dict]:
    """Oldest page of a symbol's orders (orderId cursor from the very start)."""
    try:
        return api.all_orders(symbol, order_id=_start_id["value"], limit=limit)
    except Exception as exc:
        if error_code(exc) in INVALID_PARAMETER_CODES and _start_id["value"] == 0:
            _start_id["value"] = 1
            return api.all_orders(symbol, order_id=1, limit=limit)
        raise


def start_id() -> int:
    return _start_id["value"]


def discover_symbols(
    spot_api: SpotApi,
    index: SymbolIndex,
    *,
    explicit: Iterable[str] = (),
    lake_symbols: Iterable[str] = (),
    probe: ProbeMode = "auto",
    log: Callable[[str], None] = print,
    weight_used: Callable[[], int] | None = None,
    save: bool = True,
) -> DiscoveryResult:
    """Refresh the symbol index from evidence and (depending on ``probe``) probe symbols' first pages.

    probe:
      "auto"     full probe of every listed symbol if this account never completed one (resumes an interrupted
                 one), else probe only new candidates (balance/lake/explicit symbols never probed);
      True       full probe now, re-probing every listed symbol (use to refresh a stale index);
      "targeted" only new candidates, never the full probe (the explicit list replaces it);
      False      no allOrders calls at all (daily mode): exchangeInfo + account only.
    Costs are printed through ``log`` before the probe starts. The index is saved (atomically) during and after
    the probe when ``save`` is true.
    """
    api = MeteredSpot(spot_api)
    before = weight_used() if weight_used else None
    now = api.server_time()
    info = api.exchange_info()
    listed = _apply_exchange_info(index, info, now)
    held = _held_assets(api.account())
    _add_evidence(index, listed, held, explicit, lake_symbols)

    full = probe is True or (probe == "auto" and index.full_probe_completed_at is None)
    todo = _probe_targets(index, listed, full=full, refresh=probe is True) if probe is not False else []
    estimate = _estimate(index, todo, probe_lists=probe is not False and index.order_lists.probed_at is None)
    if todo or estimate["order_list_probe"]:
        log(_cost_line(estimate, full))
    if full and (probe is True or index.full_probe_started_at is None):
        index.full_probe_started_at = now
    blind: list[BlindSpot] = []
    try:
        for i, symbol in enumerate(todo, 1):
            _touch(index, symbol, listed)
            spot = _probe_symbol(api, index, symbol, now)
            if spot:
                blind.append(spot)
            if save and index.path and i % SAVE_EVERY == 0:
                index.save()
    except BaseException:
        if save and index.path:
            index.save()  # keep what the probe learned (and paid for); "auto" resumes from here
        raise
    if estimate["order_list_probe"]:
        rows = _first_list_page(api)
        index.record_list_scan(rows, complete=len(rows) < PAGE_LIMIT, from_start=True, scanned_at=now)
    if full:
        index.full_probe_completed_at = now
        index.full_probe_weight = api.meter.weight
    blind = _dedupe(blind + _standing_blind_spots(index, listed, probe))
    if save and index.path:
        index.save()
    result = DiscoveryResult(
        symbols=candidate_symbols(index),
        probed=len(todo),
        cost_weight=api.meter.weight,
        blind_spots=blind,
        calls=dict(api.meter.calls),
        measured_weight=weight_delta(weight_used, before),
        full_probe=full,
        estimate=estimate,
        listed=len(listed),
    )
    log(
        f"spot discovery: {len(result.symbols)} candidate symbols, probed {result.probed}, "
        f"{api.meter.total_calls} calls, weight {result.cost_weight}"
        + (f" (client measured {result.measured_weight})" if result.measured_weight is not None else "")
    )
    return result


def candidate_symbols(index: SymbolIndex) -> list[str]:
    """Symbols worth asking about: known to hold orders, or named by balances/lake/explicit list.

    Evidence symbols whose probe found no orders stay candidates: the planner then only looks at days after the
    probe, which is where a first order on them could appear.
    """
    out = []
    for sym, act in index.symbols.items():
        if act.blind_spot:
            continue
        if act.has_orders or act.evidence_beyond_probe:
            out.append(sym)
    return sorted(out)


# -- steps ---------------------------------------------------------------------------------------------------------
def _apply_exchange_info(index: SymbolIndex, info: dict, now: int) -> dict[str, dict]:
    listed = {s["symbol"]: s for s in info.get("symbols", [])}
    index.listed_count = len(listed)
    index.exchange_info_at = now
    index.weight_per_minute = budget_per_minute(info)
    for sym, act in index.symbols.items():
        if sym not in listed and act.status == "listed":
            act.status = "delisted"  # was listed before, gone now
    for sym, meta in listed.items():
        if sym in index.symbols:
            act = index.symbols[sym]
            act.status, act.base_asset, act.quote_asset = "listed", meta.get("baseAsset"), meta.get("quoteAsset")
    return listed


def _held_assets(account: dict) -> set[str]:
    held = set()
    for bal in account.get("balances", []):
        if Decimal(bal.get("free", "0")) + Decimal(bal.get("locked", "0")) > 0:
            held.add(bal["asset"])
    return held


def _add_evidence(
    index: SymbolIndex, listed: dict[str, dict], held: set[str], explicit: Iterable[str], lake_symbols: Iterable[str]
) -> None:
    quotes = held | set(COMMON_QUOTES)
    for sym, meta in listed.items():
        base, quote = meta.get("baseAsset"), meta.get("quoteAsset")
        if base in held and quote in quotes:
            _touch(index, sym, listed).add_evidence("balance")
    for kind, symbols in (("lake", lake_symbols), ("explicit", explicit)):
        for sym in symbols:
            _touch(index, sym.strip().upper(), listed).add_evidence(kind)


def _touch(index: SymbolIndex, symbol: str, listed: dict[str, dict]) -> SymbolActivity:
    act = index.get(symbol)
    meta = listed.get(symbol)
    if meta:
        act.status, act.base_asset, act.quote_asset = "listed", meta.get("baseAsset"), meta.get("quoteAsset")
    elif act.status != "delisted":
        act.status = "unknown"  # not in exchangeInfo: delisted or a typo; the probe will tell (-1121 or rows)
    return act


def _probe_targets(index: SymbolIndex, listed: dict[str, dict], *, full: bool, refresh: bool) -> list[str]:
    evidence = [s for s, a in index.symbols.items() if set(a.evidence) & {"balance", "lake", "explicit"}]
    if full:
        started = index.full_probe_started_at
        pool = sorted(set(listed) | set(evidence))
        if refresh:
            return pool
        # resume an interrupted full probe: skip what was probed since it started
        return [
            s
            for s in pool
            if not (
                s in index.symbols and index.symbols[s].probed_at and started and index.symbols[s].probed_at >= started
            )
        ]
    return sorted(s for s in evidence if index.symbols[s].probed_at is None)


def _estimate(index: SymbolIndex, todo: list[str], *, probe_lists: bool) -> dict[str, Any]:
    calls = len(todo) + (1 if probe_lists else 0)
    weight = calls * SPOT_WEIGHTS["all_orders"]
    per_min = index.weight_per_minute or float(WEIGHT_PER_MINUTE["spot"])
    return {
        "symbols": len(todo),
        "order_list_probe": probe_lists,
        "calls": calls,
        "weight": weight,
        "weight_per_minute": per_min,
        "minutes_at_budget": round(weight / per_min, 2),
        "note": "plus one allOrders(limit=1) per symbol whose first page is full (>= 1000 orders)",
    }


def _cost_line(est: dict[str, Any], full: bool) -> str:
    what = "full probe of" if full else "targeted probe of"
    binance = WEIGHT_PER_MINUTE["spot"]
    at_binance = f", {est['weight'] / binance:.2f} min at Binance's {binance}/min"
    prod = "" if est["weight_per_minute"] == binance else at_binance
    lists = " + order lists" if est["order_list_probe"] else ""
    return (
        f"spot discovery: {what} {est['symbols']} symbols{lists}: {est['calls']} calls x "
        f"{SPOT_WEIGHTS['all_orders']} = {est['weight']} weight, about {est['minutes_at_budget']} min at "
        f"{est['weight_per_minute']:.0f} weight/min{prod} ({est['note']}); the result is cached in the symbol index"
    )


def _probe_symbol(api: MeteredSpot, index: SymbolIndex, symbol: str, now: int) -> BlindSpot | None:
    act = index.get(symbol)
    try:
        rows = first_page(api, symbol)
    except Exception as exc:
        if error_code(exc) != BAD_SYMBOL:
            raise
        act.status = "delisted" if act.status != "listed" else act.status
        act.probed_at = now
        act.blind_spot = f"bad_symbol: -1121 ({type(exc).__name__}); history unreachable through allOrders"
        return BlindSpot(
            "delisted",
            f"{symbol}: -1121 Invalid symbol; pair not queryable, its orders are "
            "unreachable through the API (use Binance's statement export)",
            symbol=symbol,
        )
    act.probed_at = now
    act.blind_spot = None
    act.add_evidence("probe")
    complete = len(rows) < PAGE_LIMIT
    index.record_scan(symbol, rows, complete=complete, from_start=True, scanned_at=now)
    if not complete:
        # Full page: the history goes on. One more call (20 weight) fetches the newest order, which bounds the
        # history in time (is the symbol still active?) and lets the planner estimate the order rate; without it
        # a cursor's cost would be unbounded. Worth it: it is paid once, and only by busy symbols.
        newest = api.all_orders(symbol, limit=1)
        if newest:
            r = newest[-1]
            act.last_order_id, act.last_order_time = r["orderId"], r["time"]
            act.last_update_time = max(act.last_update_time or 0, r["updateTime"])
    if act.status == "unknown":
        act.status = "delisted"  # not in exchangeInfo yet accepted by allOrders: a delisted pair, still queryable
    return None


def _first_list_page(api: MeteredSpot) -> list[dict]:
    try:
        return api.all_order_lists(from_id=_start_id["value"], limit=PAGE_LIMIT)
    except Exception as exc:
        if error_code(exc) in INVALID_PARAMETER_CODES and _start_id["value"] == 0:
            _start_id["value"] = 1
            return api.all_order_lists(from_id=1, limit=PAGE_LIMIT)
        raise


def _standing_blind_spots(index: SymbolIndex, listed: dict[str, dict], probe: ProbeMode) -> list[BlindSpot]:
    out = []
    unprobed = [s for s in listed if index.symbols.get(s) is None or index.symbols[s].probed_at is None]
    if unprobed:
        since = "" if index.full_probe_completed_at is None else " (listed after the last full probe)"
        out.append(
            BlindSpot(
                "unprobed",
                f"{len(unprobed)} listed symbols never probed{since}, probe={probe!r}; "
                "orders on them are seen only if balances, the lake or ORDERLAKE_SPOT_SYMBOLS "
                "name them",
            )
        )
    for sym, act in sorted(index.symbols.items()):
        if act.blind_spot and act.status != "listed":
            out.append(BlindSpot("delisted", act.blind_spot, symbol=sym))
    return out


def _dedupe(spots: list[BlindSpot]) -> list[BlindSpot]:
    seen, out = set(), []
    for b in spots:
        key = (b.kind, b.symbol)
        if key not in seen:
            seen.add(key)
            out.append(b)
    return out

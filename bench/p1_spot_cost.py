"""P1, request cost of a spot backfill: our planner against 24 h windows and against ccxt, on one sandbox account.

Every executed strategy runs against the same sandbox and is measured by the SANDBOX's counters; its rows are
checked against the sandbox's truth (served orders whose last update falls in the range), so a strategy that is
cheap because it misses orders shows up as incomplete instead of as a win.

* ours: ``discover_symbols`` (the one-off full probe of every listed symbol an account's first backfill needs),
  then ``backfill_spot`` (plan -> fetch -> lake), reported without and with the probe;
* (a) 24 h windows over the active symbols, executed, paging a full window by time (without paging it would be
  incomplete on busy days; how much it would miss is reported too);
* (b) 24 h windows over every listed symbol: computed from the plan's baselines, not executed (a lower bound);
* (c) ccxt's ``fetch_orders`` with its own pagination (``paginate: True``), with its default cap of 10 calls and
  with the cap lifted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ccxt

from bench.core import Context, Figure, ScenarioResult, Target, fmt_int
from bench.sandbox import (
    ACCOUNT,
    Completeness,
    Cost,
    DayRange,
    OrderKey,
    client_for,
    cost_since,
    lake_keys,
    pipeline_env,
    snapshot,
    today_utc_ms,
    truth_keys,
)
from pipeline.binance import BinanceClient
from pipeline.binance.facts import PAGE_LIMIT
from pipeline.sandbox.server import SandboxExchange
from pipeline.sandbox.testing import start_sandbox
from pipeline.spot import SymbolIndex, discover_symbols
from pipeline.spot.backfill import SpotBackfillResult, backfill_spot
from pipeline.times import DAY_MS, day_window

TARGET = Target("<=", 0.2)
CCXT_UNCAPPED_CALLS = 100_000
CCXT_WHY = (
    "ccxt pages backwards with `until` = creation time (its unified `timestamp`, by which it also sorts "
    "each page) of the oldest order in the previous page minus 1 ms, while allOrders' endTime filters by LAST "
    "UPDATE; one order in a page that was placed long before its last update makes the next `until` jump "
    "back past every order updated in between, and with the default `paginationCalls` it also stops after "
    "10 pages of 1000 orders per symbol, silently"
)
# P1 measures weight, not time: a limit no strategy reaches keeps the budget from ever pacing (or 429-ing) ccxt
SPOT_LIMIT = 1_000_000


@dataclass(frozen=True)
class Size:
    listed: int
    active: int
    days: int
    orders_per_day: float
    busy_day_orders: int


SIZES = {
    "smoke": Size(listed=20, active=3, days=6, orders_per_day=4.0, busy_day_orders=1100),
    "quick": Size(listed=400, active=12, days=120, orders_per_day=5.5, busy_day_orders=2500),
    "full": Size(listed=400, active=12, days=730, orders_per_day=5.5, busy_day_orders=2500),
}


@dataclass(frozen=True)
class Outcome:
    """One strategy: what the sandbox charged and how complete its rows were."""

    name: str
    cost: Cost
    rows: Completeness | None  # None: not executed
    note: str = ""


def run(ctx: Context) -> ScenarioResult:
    size = SIZES[ctx.mode]
    with start_sandbox(
        now_ms=today_utc_ms(),
        listed_symbols=size.listed,
        active_symbols=size.active,
        history_days=size.days,
        orders_per_day=size.orders_per_day,
        busy_day_orders=size.busy_day_orders,
        time_scale=60.0,
        spot_weight_limit=SPOT_LIMIT,
    ) as sx:
        truth = sx.truth()
        rng = DayRange.ending_yesterday(truth["generated_at_ms"], size.days)
        want = truth_keys(truth, rng)
        probe, ours, backfill = _ours(sx, ctx.fresh_dir("p1-ours"), rng, want)
        naive, unpaged_missing = _windows(sx, ctx.fresh_dir("p1-windows"), truth["active"], rng, want)
        busy_day = truth["busy_day"].get("day_start_ms", 0) // DAY_MS
        ccxt_default = _ccxt(sx, truth["active"], rng, want, busy_day, calls=None)
        ccxt_uncapped = _ccxt(sx, truth["active"], rng, want, busy_day, calls=CCXT_UNCAPPED_CALLS)
    listed = _listed_baseline(backfill)
    result = ScenarioResult(
        "P1",
        f"Request cost of a spot backfill ({size.days} days, {size.listed} listed "
        f"symbols, {size.active} active, {len(want):,} orders in range, busiest day "
        f"{truth['busy_day'].get('orders', 0):,} orders on one symbol)",
    )
    result.figures = _figures(ours, probe, naive, listed, ccxt_default, ccxt_uncapped, size)
    result.details = _details([ours, probe, naive, listed, ccxt_default, ccxt_uncapped], unpaged_missing, backfill)
    return result


# -- strategies ------------------------------------------------------------------------------------------------------
def _quiet(_: str) -> None:
    """The pipeline logs its plan and costs; the benchmark reads them from the results instead."""


def _ours(
    sx: SandboxExchange, work: Path, rng: DayRange, want: set[OrderKey]
) -> tuple[Outcome, Outcome, SpotBackfillResult]:
    """Discovery (full probe) then the backfill, measured separately; returns (with probe, without, result)."""
    data = work / "data"
    client = client_for(pipeline_env(sx, data, work / "budget"))
    try:
        before = snapshot(sx)
        discover_symbols(client.spot, SymbolIndex.load(data, ACCOUNT), log=_quiet)
        after_probe = snapshot(sx)
        result = backfill_spot(
            client.spot,
            data_dir=data,
            account=ACCOUNT,
            start=rng.start,
            end=rng.end,
            transport="rest",
            mode="backfill",
            log=_quiet,
        )
    finally:
        client.close()
    rows = Completeness.of(lake_keys(data), want)
    return (
        Outcome("ours incl. the one-off full probe (first backfill)", cost_since(sx, before), rows),
        Outcome("ours (planner; account already discovered)", cost_since(sx, after_probe), rows),
        result,
    )


def _windows(
    sx: SandboxExchange, work: Path, symbols: list[str], rng: DayRange, want: set[OrderKey]
) -> tuple[Outcome, int]:
    """(a): one allOrders per active symbol and day; a full page is paged on by its last updateTime.

    Also returns how many orders the first page of each window alone would have missed (the cost of not paging).
    """
    client = client_for(pipeline_env(sx, work / "data", work / "budget"))
    got: set[OrderKey] = set()
    first_pages: set[OrderKey] = set()
    try:
        before = snapshot(sx)
        for symbol in symbols:
            for day in rng.days:
                pages = _window_pages(client, symbol, *day_window(day))
                first_pages |= pages[0]
                got.update(*pages)
    finally:
        client.close()
    outcome = Outcome(
        f"(a) 24 h windows over the {len(symbols)} active symbols, executed",
        cost_since(sx, before),
        Completeness.of(got, want),
    )
    return outcome, len(want - first_pages)


def _window_pages(client: BinanceClient, symbol: str, start: int, end: int) -> list[set[OrderKey]]:
    pages: list[set[OrderKey]] = []
    while True:
        page = client.spot.all_orders(symbol, start_time=start, end_time=end, limit=PAGE_LIMIT)
        pages.append({(r["symbol"], r["orderId"], r["updateTime"]) for r in page})
        if len(page) < PAGE_LIMIT or page[-1]["updateTime"] == start:
            return pages  # the second case cannot advance by time: left incomplete, and reported so
        start = page[-1]["updateTime"]


def _ccxt(
    sx: SandboxExchange, symbols: list[str], rng: DayRange, want: set[OrderKey], busy_day: int, calls: int | None
) -> Outcome:
    """(c): ``fetch_orders(symbol, since=range start, params={"paginate": True})`` per active symbol.

    ``calls=None`` keeps ccxt's default cap (``paginationCalls`` 10); markets are loaded before measuring (ccxt's
    exchangeInfo is the counterpart of our discovery, which is reported separately).
    """
    ex = _ccxt_exchange(sx)
    markets = ex.load_markets()
    unified = {m["id"]: m["symbol"] for m in markets.values()}
    params: dict[str, Any] = {"paginate": True} | ({"paginationCalls": calls} if calls else {})
    before = snapshot(sx)
    got: set[OrderKey] = set()
    for symbol in symbols:
        for o in ex.fetch_orders(unified[symbol], since=rng.lo_ms, params=params):
            info = o["info"]
            if rng.lo_ms <= int(info["updateTime"]) <= rng.hi_ms:
                got.add((info["symbol"], int(info["orderId"]), int(info["updateTime"])))
    cap = "default cap of 10 calls per symbol" if calls is None else "cap lifted"
    missing = want - got
    on_busy = sum(1 for k in missing if k[2] // DAY_MS == busy_day)
    note = f"{on_busy:,} of its {len(missing):,} missing orders were last updated on the busiest day" if missing else ""
    return Outcome(
        f"(c) ccxt fetch_orders, paginate=True, {cap}", cost_since(sx, before), Completeness.of(got, want), note
    )


def _ccxt_exchange(sx: SandboxExchange) -> ccxt.binance:
    """Unmodified ccxt pointed at the sandbox, as tests/test_sandbox_ccxt.py does (spot markets only)."""
    ex = ccxt.binance(
        {
            "apiKey": sx.cfg.api_key,
            "secret": sx.cfg.api_secret,
            "enableRateLimit": False,
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False},
        }
    )
    for key in ("public", "private"):
        ex.urls["api"][key] = sx.url + "/api/v3"
    ex.urls["api"]["v1"] = sx.url + "/api/v1"
    return ex


def _listed_baseline(backfill: SpotBackfillResult) -> Outcome:
    b = backfill.plan.summary()["baselines"]["windows_over_listed"]
    return Outcome(
        f"(b) 24 h windows over every listed symbol ({b['symbols']}), computed from the plan",
        Cost(b["weight"], b["calls"], {}, 0, 0),
        None,
    )


# -- report ----------------------------------------------------------------------------------------------------------
def _figures(
    ours: Outcome,
    probe: Outcome,
    naive: Outcome,
    listed: Outcome,
    ccxt_default: Outcome,
    ccxt_uncapped: Outcome,
    size: Size,
) -> list[Figure]:
    def vs(name: str, mine: Outcome, other: Outcome, target: Target | None, why: str = "") -> Figure:
        complete = mine.rows is not None and mine.rows.complete
        return Figure(
            "P1",
            name,
            _cell(mine),
            _cell(other),
            mine.cost.weight / other.cost.weight,
            target,
            ok=complete,
            why=why or _incomplete_why(mine, other),
        )

    probe_share = (probe.cost.weight - ours.cost.weight) / probe.cost.weight
    probe_why = (
        f"the full probe is a fixed cost ({fmt_int(probe.cost.weight - ours.cost.weight)} weight, "
        f"{probe_share:.0%} of this first backfill: one allOrders per listed symbol, paid once per account "
        f"and cached in the symbol index) while (a) grows with the {size.days} days of history; it is "
        "amortised over a long backfill and absent from every later one"
    )
    return [
        vs("weight: ours vs (a) 24 h windows over the active symbols", ours, naive, TARGET),
        vs("weight: ours incl. the one-off full probe vs (a)", probe, naive, TARGET, probe_why),
        vs("weight: ours vs (b) 24 h windows over every listed symbol", ours, listed, None),
        vs("weight: ours vs (c) ccxt paginate (default cap)", ours, ccxt_default, None, _ccxt_why(ccxt_default)),
        vs("weight: ours vs (c) ccxt paginate (cap lifted)", ours, ccxt_uncapped, None, _ccxt_why(ccxt_uncapped)),
    ]


def _ccxt_why(o: Outcome) -> str:
    if o.rows is None or o.rows.complete:
        return ""
    return f"ccxt is {o.rows.text()} ({o.note}): {CCXT_WHY}"


def _cell(o: Outcome) -> str:
    rows = "not executed" if o.rows is None else o.rows.text()
    return f"{o.cost.text()}, {rows}"


def _incomplete_why(mine: Outcome, other: Outcome) -> str:
    if mine.rows is not None and not mine.rows.complete:
        return f"our rows are {mine.rows.text()}: a cheap but incomplete backfill does not count"
    if other.rows is not None and not other.rows.complete:
        return f"the comparison is {other.rows.text()}: it is cheap because it does not fetch everything"
    return ""


def _details(outcomes: list[Outcome], unpaged_missing: int, backfill: SpotBackfillResult) -> list[str]:
    lines = [
        "| strategy | calls | weight | orders in range | missing | extra | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        r = o.rows
        lines.append(
            f"| {o.name} | {fmt_int(o.cost.calls)} | {fmt_int(o.cost.weight)} | "
            + (
                f"{fmt_int(r.got)} | {fmt_int(r.missing)} | {fmt_int(r.extra)} | {r.text()} |"
                if r
                else "— | — | — | not executed (lower bound: no paging) |"
            )
        )
    lines += ["", *(f"* {o.name}: {o.note}." for o in outcomes if o.note)]
    plan = backfill.plan.summary()
    strategies = ", ".join(f"{k} {v['symbols']} symbols / {v['calls']} calls" for k, v in plan["strategies"].items())
    lines += [
        "",
        f"Planner: {strategies}; order lists {plan['order_lists']['strategy']} "
        f"({plan['order_lists']['calls']} calls, included in our weight; no other strategy fetches them). "
        f"Without paging, (a) would miss {fmt_int(unpaged_missing)} orders (busy days hold more than "
        f"{PAGE_LIMIT} orders). Weight and calls are the sandbox's own counters.",
    ]
    return lines

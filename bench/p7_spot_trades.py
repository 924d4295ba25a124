"""P7, request cost of spot trades: our plan from the lake's filled orders against the two naive ways, executed.

One sandbox account; the spot orders of the range are backfilled first (not counted: every strategy needs them, or
none of them knows which orders to ask about). Then, each against the same sandbox and measured by the SANDBOX's
counters, each checked against the truth (every trade of the range, no more):

* ours: ``backfill_spot_trades`` (per symbol the cheapest of orderId calls, 24 h windows and fromId cursors);
* (a) 24 h windows over the active symbols, every day of the range, a full window paged on by ``fromId``;
* (b) one ``orderId`` call per filled order (paged on by ``orderId`` + ``fromId``): what a tool that walks the
  order history does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.core import Context, Figure, ScenarioResult, Target, fmt_int
from bench.sandbox import ACCOUNT, Cost, DayRange, client_for, cost_since, pipeline_env, snapshot, today_utc_ms
from pipeline.sandbox.server import SandboxExchange
from pipeline.sandbox.testing import start_sandbox
from pipeline.spot.backfill import backfill_spot
from pipeline.times import day_window
from pipeline.trades.spot_backfill import backfill_spot_trades
from pipeline.trades.spot_fetch import SpotTradesFetcher
from pipeline.trades.stored import filled_orders

TARGET = Target("<=", 0.2)
SPOT_LIMIT = 1_000_000  # P7 measures weight, not time: no strategy is ever paced
TradeKey = tuple[str, int]


@dataclass(frozen=True)
class Size:
    listed: int
    active: int
    days: int
    orders_per_day: float
    busy_day_orders: int


SIZES = {
    "smoke": Size(listed=20, active=3, days=6, orders_per_day=4.0, busy_day_orders=1100),
    "quick": Size(listed=100, active=12, days=120, orders_per_day=5.5, busy_day_orders=2500),
    "full": Size(listed=100, active=12, days=730, orders_per_day=5.5, busy_day_orders=2500),
}


@dataclass(frozen=True)
class Outcome:
    name: str
    cost: Cost
    got: set[TradeKey]

    def verdict(self, want: set[TradeKey]) -> str:
        missing, extra = len(want - self.got), len(self.got - want)
        if not missing and not extra:
            return "complete"
        return f"INCOMPLETE: {missing:,} of {len(want):,} missing" + (f", {extra:,} extra" if extra else "")


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
        want = {(t["symbol"], t["id"]) for t in truth["spot_trades"] if rng.lo_ms <= t["time"] <= rng.hi_ms}
        data = ctx.fresh_dir("p7") / "data"
        env = pipeline_env(sx, data, data.parent / "budget")
        client = client_for(env)
        try:
            backfill_spot(client.spot, data_dir=data, account=ACCOUNT, start=rng.start, end=rng.end, log=_quiet)
            ours, plan = _ours(sx, client, data, rng)
            windows = _windows(sx, client, truth["active"], rng)
            per_order = _per_order(sx, client, data, rng)
        finally:
            client.close()
    n_filled = plan["baselines"]["per_order"]["orders"]
    result = ScenarioResult(
        "P7",
        f"Request cost of spot trades ({size.days} days, {size.active} active symbols, {len(want):,} trades of "
        f"{n_filled:,} filled orders in range)",
    )
    result.figures = [
        _figure("ours vs (a) 24 h windows over the active symbols", ours, windows, want, TARGET),
        _figure("ours vs (b) one orderId call per filled order", ours, per_order, want, None),
    ]
    result.details = _details([ours, windows, per_order], want, plan)
    return result


def _quiet(_: str) -> None:
    """The pipeline logs its plan and costs; the benchmark reads them from the results instead."""


def _ours(sx: SandboxExchange, client, data: Path, rng: DayRange) -> tuple[Outcome, dict]:
    now = client.spot.server_time()
    before = snapshot(sx)
    result = backfill_spot_trades(
        client.spot,
        data_dir=data,
        account=ACCOUNT,
        start=rng.start,
        end=rng.end,
        now_ms=now,
        log=_quiet,
    )
    cost = cost_since(sx, before)
    got = {k for k, t in result.fetched.trades.items() if rng.lo_ms <= t["time"] <= rng.hi_ms}
    return Outcome("ours (plan from the lake's filled orders)", cost, got), result.plan.summary()


def _windows(sx: SandboxExchange, client, symbols: list[str], rng: DayRange) -> Outcome:
    before = snapshot(sx)
    fetcher = SpotTradesFetcher(client.spot)
    got: set[TradeKey] = set()
    for symbol in symbols:
        for day in rng.days:
            lo, hi = day_window(day)
            got |= {(t["symbol"], t["id"]) for t in fetcher.window(symbol, lo, hi)}
    name = f"(a) 24 h windows over the {len(symbols)} active symbols, executed"
    return Outcome(name, cost_since(sx, before), got)


def _per_order(sx: SandboxExchange, client, data: Path, rng: DayRange) -> Outcome:
    orders = [o for o in filled_orders(data, ACCOUNT) if o.time_ms <= rng.hi_ms and o.update_ms >= rng.lo_ms]
    before = snapshot(sx)
    fetcher = SpotTradesFetcher(client.spot)
    got: set[TradeKey] = set()
    for o in orders:
        rows = fetcher.of_order(o.symbol, o.order_id)
        got |= {(t["symbol"], t["id"]) for t in rows if rng.lo_ms <= t["time"] <= rng.hi_ms}
    return Outcome(f"(b) one orderId call per filled order ({len(orders):,}), executed", cost_since(sx, before), got)


def _figure(name: str, ours: Outcome, other: Outcome, want: set[TradeKey], target: Target | None) -> Figure:
    complete = ours.verdict(want) == "complete" and other.verdict(want) == "complete"
    return Figure(
        "P7",
        f"weight: {name}",
        f"{ours.cost.text()}, {ours.verdict(want)}",
        f"{other.cost.text()}, {other.verdict(want)}",
        ours.cost.weight / other.cost.weight if other.cost.weight else None,
        target,
        ok=complete,
        why="" if complete else "a strategy did not return exactly the truth's trades",
    )


def _details(outcomes: list[Outcome], want: set[TradeKey], plan: dict) -> list[str]:
    lines = [
        "| strategy | calls | weight | trades in range | missing | extra | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        lines.append(
            f"| {o.name} | {fmt_int(o.cost.calls)} | {fmt_int(o.cost.weight)} | {fmt_int(len(want))} | "
            f"{fmt_int(len(want - o.got))} | {fmt_int(len(o.got - want))} | {o.verdict(want)} |"
        )
    st = plan["strategies"]
    lines.append("")
    lines.append(
        "Plan: "
        + ", ".join(f"{k} {v['symbols']} symbols / weight {fmt_int(v['weight'])}" for k, v in st.items())
        + f"; planned {fmt_int(plan['est_weight'])}. The spot orders of the range were backfilled first and are not "
        "counted (every strategy needs them). Weight and calls are the sandbox's own counters."
    )
    return lines

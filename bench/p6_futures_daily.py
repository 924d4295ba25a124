"""P6, USDⓈ-M and PM freshness without download ids: the daily REST tail against the weekly export schedule.

One sandbox account (USDⓈ-M and PM; late zero-fill ends off, the steady state REST can follow), two lakes that
both hold the truth at the start; then the clock advances a day at a time and each lake is kept its own way:

* ours: every day, the orders REST tail for yesterday (discovery, windows, the lake's open orders refreshed);
* baseline: the weekly export schedule this design replaced: every 7th day the export chain's refresh (the
  previous 7 days, back to the last export), waited for and ingested.

Measured side by side: download ids per market per month (each lake's export ledger) and staleness: just before
each day's run, the age of the oldest change of the truth a lake does not show yet, in days (worst over the days).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.core import Context, Figure, ScenarioResult, Target
from bench.sandbox import ACCOUNT, client_for, pipeline_env, today_utc_ms
from pipeline.binance.exports import EXPORT_ENDPOINTS
from pipeline.exports.chain import ExportChain
from pipeline.exports.ledger import ExportLedger
from pipeline.exports.states import LedgerState
from pipeline.futures.discovery import discover_futures_symbols
from pipeline.futures.orders_tail import run_futures_orders_tail
from pipeline.futures.stored import latest_orders
from pipeline.sandbox.server import SandboxExchange
from pipeline.sandbox.testing import start_sandbox
from pipeline.storage.schemas import futures_orders
from pipeline.storage.versions import write_day
from pipeline.times import DAY_MS, day_of, day_start_ms

MARKETS = ("usdm", "pm_um")
IDS_TARGET = Target("<=", 0.25)  # ours at most a quarter of the baseline's ids (the goal: at most 1 a month)
STALE_TARGET = Target("<=", 0.25)  # and at most a quarter of its staleness (the goal: at most 1 day)
SIZES = {"smoke": 7, "quick": 28, "full": 56}  # simulated days (the baseline exports every 7th)
WEEK = 7


@dataclass
class Lake:
    name: str
    data: Path
    stale_days: float = 0.0
    worst_on: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def ids(self, market: str) -> int:
        entries = ExportLedger(self.data).entries(market=market, kind="order", account=ACCOUNT)
        return sum(1 for e in entries if e.download_id)


def run(ctx: Context) -> ScenarioResult:
    days = SIZES[ctx.mode]
    start = today_utc_ms() - (days + 2) * DAY_MS + 13 * 3_600_000
    with start_sandbox(
        now_ms=start,
        server_time_at_market=True,
        listed_symbols=20,
        history_days=2,
        futures_history_days=90,
        futures_late_finals=False,
        time_scale=60.0,
        export_link_ttl_seconds=(days + 9) * 86_400 * 60.0,  # serverTime runs behind the real clock here
    ) as sx:
        ours, weekly = Lake("ours", ctx.fresh_dir("p6") / "ours"), Lake("weekly", ctx.fresh_dir("p6w") / "weekly")
        for lake in (ours, weekly):
            _seed(sx, lake.data)
        for day in range(1, days + 1):
            sx.advance(days=1)
            for lake in (ours, weekly):
                _measure(sx, lake)
            t0 = time.perf_counter()
            _daily(sx, ours.data)
            ours.seconds += time.perf_counter() - t0
            if day % WEEK == 0:
                t0 = time.perf_counter()
                _weekly(sx, weekly.data)
                weekly.seconds += time.perf_counter() - t0
    return _result(ours, weekly, days)


def _seed(sx: SandboxExchange, data: Path) -> None:
    """The truth at the start, as a complete lake (both strategies start from the same)."""
    truth = sx.truth()
    for market in MARKETS:
        by_day: dict = defaultdict(list)
        for o in truth[f"{market}_orders"]:
            by_day[day_of(o["updateTime"])].append(o)
        for day, rows in by_day.items():
            table = futures_orders.from_api(
                rows, account=ACCOUNT, market=market, source="rest", ingested_at=datetime.now(UTC)
            )
            write_day(data, futures_orders.MARKETS[market], ACCOUNT, day, table)


def _measure(sx: SandboxExchange, lake: Lake) -> None:
    now = sx.exchange.clock.market()
    truth = sx.truth()
    for market in MARKETS:
        stored = latest_orders(lake.data, ACCOUNT, futures_orders.MARKETS[market])
        versions: dict = defaultdict(list)
        for v in truth[f"{market}_versions"]:
            versions[(v["symbol"], v["orderId"])].append(v["updateTime"])
        for o in truth[f"{market}_orders"]:
            key = (o["symbol"], o["orderId"])
            s = stored.get(key)
            if s is not None and s.status == o["status"] and s.update_ms == o["updateTime"]:
                continue
            since = o["time"] if s is None else min(t for t in versions[key] if t > s.update_ms)
            age = (now - since) / DAY_MS
            if age > lake.stale_days:
                lake.stale_days, lake.worst_on = age, f"{market} {key[0]} {key[1]} ({o['status']})"


def _daily(sx: SandboxExchange, data: Path) -> None:
    env = pipeline_env(sx, data, data.parent / "budget")
    with client_for(env) as client:
        now = client.futures.server_time()
        listed = [s["symbol"] for s in client.futures.exchange_info().get("symbols", [])]
        yesterday = day_of(now) - timedelta(days=1)
        for market in MARKETS:
            api = client.futures if market == "usdm" else client.papi
            found = discover_futures_symbols(
                api,
                market=market,
                data_dir=data,
                account=ACCOUNT,
                now_ms=now,
                since_ms=day_start_ms(yesterday),
                listed=listed,
                log=_quiet,
            )
            run_futures_orders_tail(
                api,
                market=market,
                data_dir=data,
                account=ACCOUNT,
                days=[yesterday],
                now_ms=now,
                symbols=found.symbols,
                symbolless=bool(found.symbolless),
                log=_quiet,
            )


def _weekly(sx: SandboxExchange, data: Path) -> None:
    """What the weekly export schedule did: refresh both order endpoints, wait for the files, ingest them."""
    env = pipeline_env(sx, data, data.parent / "budget")
    with client_for(env) as client:
        chain = ExportChain(
            client,
            ExportLedger(data),
            data_dir=data,
            account=ACCOUNT,
            allow_http_loopback=True,
            now=lambda: sx.exchange.clock.wire() / 1000,
            time_scale=1 / sx.cfg.time_scale,
        )
        for market in MARKETS:
            chain.refresh(EXPORT_ENDPOINTS[(market, "order")])
        while True:
            chain.poll_due()
            for e in chain.ledger.entries(account=ACCOUNT, status=(LedgerState.COMPLETED, LedgerState.RETRIEVED)):
                chain.ingest(str(e.download_id))
            if not chain.ledger.entries(account=ACCOUNT, status=LedgerState.PROCESSING):
                return
            time.sleep(0.2)


def _quiet(_: str) -> None:
    """The pipeline logs its plan and costs; the benchmark reads them from the lake and the ledger instead."""


def _result(ours: Lake, weekly: Lake, days: int) -> ScenarioResult:
    per_month = 30 / days
    ids = {lake.name: max(lake.ids(m) for m in MARKETS) * per_month for lake in (ours, weekly)}
    result = ScenarioResult(
        "P6",
        f"USDⓈ-M and PM freshness: daily REST tail vs the weekly export schedule ({days} simulated days, both markets)",
    )
    result.figures = [
        Figure(
            "P6",
            "download ids per market per month: daily REST tail vs weekly exports",
            f"{ids['ours']:.1f} ids/market/month",
            f"{ids['weekly']:.1f} ids/market/month",
            ids["ours"] / ids["weekly"] if ids["weekly"] else None,
            IDS_TARGET,
            ok=ids["ours"] <= 1,
            why="goal: at most 1 id per market per month",
        ),
        Figure(
            "P6",
            "days of staleness (worst, just before a run): daily REST tail vs weekly exports",
            f"{ours.stale_days:.2f} days",
            f"{weekly.stale_days:.2f} days",
            ours.stale_days / weekly.stale_days if weekly.stale_days else None,
            STALE_TARGET,
            ok=ours.stale_days <= 1,
            why="goal: at most 1 day",
        ),
    ]
    result.details = [
        "| strategy | ids usdm | ids pm_um | ids/market/month | worst staleness | worst order | run time |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {lake.name} | {lake.ids('usdm')} | {lake.ids('pm_um')} | {ids[lake.name]:.1f} | "
            f"{lake.stale_days:.2f} d | {lake.worst_on or '—'} | {lake.seconds:.1f} s |"
            for lake in (ours, weekly)
        ),
        "",
        "Both lakes start equal to the truth. Staleness is measured each simulated day just before the runs: the "
        "age of the first change of any order (a new order, a fill, a cancel) the lake does not show yet. The "
        "baseline's exports are the export chain's own weekly refresh, requested, polled and ingested.",
    ]
    return result

"""One spot trades run, end to end and without Dagster: plan from the lake -> fetch -> write days -> repair -> check.

Trades go to the partition of their UTC day with the merge that keeps what is stored. Every requested day gets a
partition, empty or not, so coverage is known; a trade fetched for another day that the lake already covers is
written there too. After the fetch, a filled order whose fills all lie on covered days but whose stored trades do not
add up to its executed quantity (an order the lake learned of after its trades' day was fetched) is asked for by
``orderId``: the repair. What still does not add up is reported, never hidden. Design: docs/design/trades.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.spot.common import BlindSpot
from pipeline.spot.index import SymbolIndex
from pipeline.storage.schemas import spot_trades
from pipeline.storage.schemas.columns import REST, WS
from pipeline.storage.versions import write_day
from pipeline.times import day_of, days_between
from pipeline.trades.spot_fetch import FetchedTrades, SpotTradesFetcher, TradesApi, execute_trades_plan
from pipeline.trades.spot_planner import TradesPlan, plan_spot_trades
from pipeline.trades.stored import FilledOrder, StoredTrades, filled_orders, stored_trades

TABLE = "spot_trades"
SOURCE = {"rest": REST, "ws": WS}


@dataclass(frozen=True)
class Mismatch:
    """A filled order whose stored trades do not add up to its executed quantity."""

    symbol: str
    order_id: int
    executed_qty: Decimal
    trades_qty: Decimal
    trades: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "order_id": self.order_id,
            "executed_qty": str(self.executed_qty),
            "trades_qty": str(self.trades_qty),
            "trades": self.trades,
        }


@dataclass
class SpotTradesResult:
    plan: TradesPlan
    fetched: FetchedTrades
    written: dict[date, int] = field(default_factory=dict)
    repaired: list[tuple[str, int]] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def blind_spots(self) -> list[BlindSpot]:
        return list(self.fetched.blind_spots)

    def metadata(self) -> dict[str, Any]:
        plan = self.plan.summary()
        return {
            "plan": {k: plan[k] for k in ("start", "end", "days", "est_weight", "strategies", "baselines")},
            "calls": dict(self.fetched.meter.calls),
            "weight": self.fetched.meter.weight,
            "baseline_windows_weight": plan["baselines"]["windows_over_active"]["weight"],
            "baseline_per_order_weight": plan["baselines"]["per_order"]["weight"],
            "trades_fetched": len(self.fetched.trades),
            "repaired_orders": len(self.repaired),
            "mismatched_orders": [m.to_dict() for m in self.mismatches[:50]],
            "blind_spots": [b.to_dict() for b in self.blind_spots],
        }


def backfill_spot_trades(
    api: TradesApi,
    *,
    data_dir: str | Path,
    account: str,
    start: date,
    end: date,
    now_ms: int,
    transport: str = "rest",
    on_written: Callable[[date, pa.Table], None] | None = None,
    log: Callable[[str], None] = print,
) -> SpotTradesResult:
    """Fetch the spot trades of ``start``..``end`` (inclusive UTC days) at the cost the lake's orders allow."""
    filled = filled_orders(data_dir, account)
    stored = stored_trades(data_dir, account)
    index = SymbolIndex.load(data_dir, account)
    plan = plan_spot_trades(
        start, end, filled=filled, stored=stored, active_symbols=_order_symbols(index, filled), now_ms=now_ms
    )
    log(plan.describe())
    fetched = execute_trades_plan(api, plan, now_ms=now_ms, log=log)
    result = SpotTradesResult(plan, fetched)
    assets = {s: (a.base_asset, a.quote_asset) for s, a in index.symbols.items()}
    requested = [d for d in days_between(start, end) if d <= day_of(now_ms)]
    covered = stored.days | set(requested)
    writer = _Writer(data_dir, account, SOURCE[transport], assets, result, on_written)
    writer.write(list(fetched.trades.values()), covered, requested)
    repair = [m for m in mismatches(filled_orders(data_dir, account), stored_trades(data_dir, account)) if _fixable(m)]
    if repair:
        fixer = SpotTradesFetcher(api, FetchedTrades(meter=fetched.meter, blind_spots=fetched.blind_spots))
        bad = {b.symbol for b in fetched.blind_spots}
        for m in repair:
            if m.symbol in bad:
                continue
            rows = fixer.of_order(m.symbol, m.order_id)
            writer.write(rows, covered, [])
            result.repaired.append((m.symbol, m.order_id))
        log(f"spot trades: {len(result.repaired)} order(s) repaired by orderId (trades missing for a covered day)")
    result.mismatches = mismatches(filled_orders(data_dir, account), stored_trades(data_dir, account))
    if result.mismatches:
        log(f"spot trades: {len(result.mismatches)} filled order(s) whose trades do not add up (see metadata)")
    return result


def _fixable(m: Mismatch) -> bool:
    return m.trades_qty < m.executed_qty


def mismatches(filled: Iterable[FilledOrder], stored: StoredTrades) -> list[Mismatch]:
    """Filled orders whose fills lie on days the table covers, where sum(trades.qty) != executed_qty."""
    out = []
    for o in filled:
        if not stored.covers_fills_of(o):
            continue
        key = (o.symbol, o.order_id)
        got = stored.qty_by_order.get(key, Decimal(0))
        if got != o.executed_qty:
            out.append(Mismatch(o.symbol, o.order_id, o.executed_qty, got, stored.count_by_order.get(key, 0)))
    return out


def _order_symbols(index: SymbolIndex, filled: list[FilledOrder]) -> list[str]:
    """The symbols the windows baseline walks: every symbol known to hold orders."""
    return sorted({s for s, a in index.symbols.items() if a.has_orders} | {o.symbol for o in filled})


class _Writer:
    def __init__(
        self,
        data_dir: str | Path,
        account: str,
        source: str,
        assets: dict[str, tuple[str | None, str | None]],
        result: SpotTradesResult,
        on_written: Callable[[date, pa.Table], None] | None,
    ) -> None:
        self.data_dir, self.account, self.source, self.assets = data_dir, account, source, assets
        self.result, self.on_written = result, on_written

    def write(self, rows: list[dict], covered: set[date], always: list[date]) -> None:
        """Rows on covered days into their partitions (merged); every day of ``always`` gets one, empty or not."""
        by_day: dict[date, list[dict]] = {d: [] for d in always}
        for r in rows:
            day = day_of(r["time"])
            if day in covered:
                by_day.setdefault(day, []).append(r)
        ingested = datetime.now(UTC)
        for day, day_rows in sorted(by_day.items()):
            day_rows.sort(key=lambda r: (r["symbol"], r["id"]))
            table = spot_trades.from_api(
                day_rows, account=self.account, source=self.source, ingested_at=ingested, assets=self.assets
            )
            merged = write_day(self.data_dir, TABLE, self.account, day, table)
            self.result.written[day] = merged.num_rows
            if self.on_written is not None:
                self.on_written(day, merged)

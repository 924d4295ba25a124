"""Sandbox helpers shared by the API scenarios (P1, P2, P5): pipeline environment, clients, server-side cost.

Costs are read from the SANDBOX's own counters (what Binance would charge), never from the client's bookkeeping,
so a strategy that under-counts its own calls (ccxt keeps none) is measured the same way as ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.binance import BinanceClient
from pipeline.sandbox.server import SandboxExchange
from pipeline.sandbox.testing import sandbox_env
from pipeline.settings import Settings
from pipeline.storage import lake
from pipeline.times import day_of, day_start_ms, day_window

ACCOUNT = "main"
SPOT_PREFIX = "/api/v3/"


def today_utc_ms() -> int:
    """The sandbox accounts' "now": the start of today (UTC). Their history is generated relative to it, so every
    run on any day gets the same account (same orders, same busy day, same archived set), and all of it lies
    before today: the backfill range of complete days ending yesterday covers it whole."""
    return day_start_ms(datetime.now(UTC).date())


def pipeline_env(sx: SandboxExchange, data_dir: Path, budget_dir: Path) -> dict[str, str]:
    """The variables of :class:`Settings` pointed at ``sx``; pacing scaled like the sandbox, a private budget (a
    plain mapping, so that it can be handed to a spawned process)."""
    return {
        **sandbox_env(sx, data_dir),
        "ORDERLAKE_TIME_SCALE": str(sx.cfg.time_scale),
        "ORDERLAKE_BUDGET_DIR": str(budget_dir),
    }


def client_for(env: dict[str, str]) -> BinanceClient:
    return BinanceClient.from_settings(Settings.from_env(env))


@dataclass(frozen=True)
class Cost:
    """Spot weight and calls the sandbox counted between two snapshots."""

    weight: int
    calls: int
    by_endpoint: dict[str, int]
    http_429: int
    http_418: int

    def text(self) -> str:
        return f"{self.weight:,} weight / {self.calls:,} calls"


def snapshot(sx: SandboxExchange) -> dict[str, Any]:
    return sx.stats()


def cost_since(sx: SandboxExchange, before: dict[str, Any]) -> Cost:
    now = sx.stats()
    endpoints = {
        k: v - before["by_endpoint"].get(k, 0)
        for k, v in now["by_endpoint"].items()
        if k.startswith(SPOT_PREFIX) and v - before["by_endpoint"].get(k, 0)
    }
    return Cost(
        weight=now["weight"].get("spot", 0) - before["weight"].get("spot", 0),
        calls=sum(endpoints.values()),
        by_endpoint=endpoints,
        http_429=now["http_429"] - before["http_429"],
        http_418=now["http_418"] - before["http_418"],
    )


@dataclass(frozen=True)
class DayRange:
    """The backfill range: the ``days`` complete UTC days ending yesterday (server time)."""

    start: date
    end: date

    @classmethod
    def ending_yesterday(cls, now_ms: int, days: int) -> DayRange:
        end = day_of(now_ms) - timedelta(days=1)
        return cls(end - timedelta(days=days - 1), end)

    @property
    def lo_ms(self) -> int:
        return day_start_ms(self.start)

    @property
    def hi_ms(self) -> int:
        return day_window(self.end)[1]

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


OrderKey = tuple[str, int, int]  # (symbol, orderId, updateTime): an order VERSION


def truth_keys(truth: dict[str, Any], rng: DayRange) -> set[OrderKey]:
    """Served orders (archived ones are not) whose last update falls in the range: what a complete fetch returns."""
    return {
        (r["symbol"], r["orderId"], r["updateTime"])
        for r in truth["spot_orders"]
        if not r["archived"] and rng.lo_ms <= r["updateTime"] <= rng.hi_ms
    }


def lake_keys(data_dir: Path) -> set[OrderKey]:
    """The order versions a backfill wrote to the lake (three columns read, not whole rows)."""
    found = lake.account_dataset(data_dir, "spot_orders", ACCOUNT)  # wherever the lake lives
    if found is None:
        return set()
    table = found.to_table(columns=["symbol", "order_id", "update_time"])
    times = table.column("update_time").cast("int64").to_pylist()
    return set(zip(table.column("symbol").to_pylist(), table.column("order_id").to_pylist(), times, strict=True))


@dataclass(frozen=True)
class Completeness:
    """A strategy's rows against the truth: complete means no order missing and none invented."""

    want: int
    got: int
    missing: int
    extra: int

    @classmethod
    def of(cls, got: set[OrderKey], want: set[OrderKey]) -> Completeness:
        return cls(len(want), len(got), len(want - got), len(got - want))

    @property
    def complete(self) -> bool:
        return self.missing == 0 and self.extra == 0

    def text(self) -> str:
        if self.complete:
            return "complete"
        return f"INCOMPLETE: {self.missing:,} of {self.want:,} missing" + (
            f", {self.extra:,} extra" if self.extra else ""
        )

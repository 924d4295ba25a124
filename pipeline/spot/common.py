"""Shared pieces of the spot backfill: call weights, day windows, blind spots and a metering wrapper.

Everything here is transport-neutral: ``spot_api`` is any object with the SpotRest/SpotWs method names
(``client.spot`` or ``client.spot_ws``); both return Binance's JSON shapes unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from pipeline.binance.facts import SPOT_WEIGHTS, WEIGHT_PER_MINUTE

# SPOT_WEIGHTS prices plans and meters our calls; the client's limiter counts the same calls independently
# (client.weight_used()), so a mismatch between the two shows up in run metadata.

# Statuses after which an order never changes again, so its updateTime is final.
TERMINAL_STATUSES = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"})
# Order lists are done once listOrderStatus is ALL_DONE (or REJECT).
TERMINAL_LIST_STATUSES = frozenset({"ALL_DONE", "REJECT"})

# Binance error codes we branch on. We compare `exc.code` instead of importing exception classes so this module
# works with any transport whose errors carry Binance's code (pipeline.binance.errors.BinanceError does).
BAD_SYMBOL = -1121
WINDOW_TOO_LARGE = -1127
ORDER_ARCHIVED = -2026
INVALID_PARAMETER_CODES = frozenset({-1100, -1101, -1102, -1103, -1104, -1105, -1106, -1111, -1128, -1130})


class SpotApi(Protocol):
    """The subset of pipeline.binance SpotRest/SpotWs this package uses."""

    def server_time(self) -> int: ...
    def exchange_info(self, symbols: list[str] | None = None) -> dict: ...
    def account(self, omit_zero_balances: bool = False) -> dict: ...
    def all_orders(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 1000,
    ) -> list[dict]: ...
    def all_order_lists(
        self,
        *,
        from_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 1000,
    ) -> list[dict]: ...
    def open_orders(self, symbol: str | None = None) -> list[dict]: ...
    def open_order_lists(self) -> list[dict]: ...


def error_code(exc: BaseException) -> int | None:
    """Binance error code carried by an exception, if any."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


@dataclass(frozen=True)
class BlindSpot:
    """Something we know we cannot see, recorded instead of silently missing it.

    kind: "delisted" (symbol rejected with -1121, no history reachable), "archived" (zero-fill cancels older than
    90 days are dropped by Binance), "unprobed" (listed symbols whose activity we did not check), "stale_probe"
    (symbols with no orders at probe time, not re-checked for the later part of the range), ...
    """

    kind: str
    detail: str
    symbol: str | None = None
    start: str | None = None  # ISO date, inclusive
    end: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Meter:
    """Counts the calls and weight we issue, per method (our own accounting, transport independent)."""

    calls: dict[str, int] = field(default_factory=dict)
    weight: int = 0

    def add(self, kind: str, n: int = 1) -> None:
        self.calls[kind] = self.calls.get(kind, 0) + n
        self.weight += SPOT_WEIGHTS[kind] * n

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


class MeteredSpot:
    """Wraps a spot API object and meters every call, whether it succeeds or fails (weight is spent either way)."""

    def __init__(self, api: SpotApi, meter: Meter | None = None) -> None:
        self.api = api
        self.meter = meter or Meter()

    def server_time(self) -> int:
        self.meter.add("time")
        return self.api.server_time()

    def exchange_info(self) -> dict:
        self.meter.add("exchange_info")
        return self.api.exchange_info()

    def account(self) -> dict:
        self.meter.add("account")
        return self.api.account(omit_zero_balances=True)

    def all_orders(self, symbol: str, **kw: Any) -> list[dict]:
        self.meter.add("all_orders")
        return self.api.all_orders(symbol, **kw)

    def all_order_lists(self, **kw: Any) -> list[dict]:
        self.meter.add("all_order_lists")
        return self.api.all_order_lists(**kw)

    def open_orders(self, symbol: str | None = None) -> list[dict]:
        self.meter.add("open_orders_symbol" if symbol else "open_orders_all")
        return self.api.open_orders(symbol) if symbol else self.api.open_orders()

    def open_order_lists(self) -> list[dict]:
        self.meter.add("open_order_lists")
        return self.api.open_order_lists()


def budget_per_minute(exchange_info: dict | None) -> float:
    """REQUEST_WEIGHT allowance per real minute advertised by exchangeInfo (6000 on Binance).

    The sandbox advertises scaled windows (e.g. 6000 per 1 SECOND with --time-scale 60), so we normalise to a
    per-minute rate instead of assuming the interval is MINUTE.
    """
    seconds = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
    best: float | None = None
    for rl in (exchange_info or {}).get("rateLimits", []):
        if rl.get("rateLimitType") != "REQUEST_WEIGHT":
            continue
        span = seconds.get(rl.get("interval", "MINUTE"), 60) * int(rl.get("intervalNum", 1))
        rate = float(rl["limit"]) * 60.0 / span
        best = rate if best is None else min(best, rate)
    return best or float(WEIGHT_PER_MINUTE["spot"])


def weight_delta(read: Callable[[], int] | None, before: int | None) -> int | None:
    if read is None or before is None:
        return None
    return read() - before

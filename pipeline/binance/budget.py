"""A request-weight budget shared by every process on this machine that talks to the same (limiter group, host).

:meth:`WeightBudget.reserve` before each request (it sleeps into the next window when the weight does not fit under
``fraction`` × limit), :meth:`WeightBudget.settle` after each response (the server's count wins), and
:meth:`WeightBudget.block` after a 429 or 418 (every process pauses the host). The state is a small JSON document per
(group, host, egress IP), read-modify-written under the lock of a :mod:`pipeline.binance.budget_store` (local files
by default, PostgreSQL or Redis for workers on several machines). Design: docs/design/budget.md;
facts: docs/binance-facts.md §Rate limits.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.binance import errors
from pipeline.binance.budget_store import BudgetStore, FileStore
from pipeline.binance.facts import WEIGHT_PER_MINUTE
from pipeline.times import DAY_MS, fmt_ms
from pipeline.times import now_ms as wall_now_ms

log = logging.getLogger(__name__)

INTERVAL_MS = {"SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": DAY_MS}
LETTER_MS = {"S": 1000, "M": 60_000, "H": 3_600_000, "D": DAY_MS}
LIMITS_TTL_MS = DAY_MS
_HEADER_RE = re.compile(r"^x-mbx-used-weight-(\d+)([smhd])$", re.IGNORECASE)
_LIMIT_TEXT_RE = re.compile(r"current limit is (\d+) request weight per (\d+) (SECOND|MINUTE|HOUR|DAY)", re.I)


@dataclass(frozen=True)
class Limit:
    interval_ms: int
    limit: int


def limits_from_rate_limits(rate_limits: Iterable[Mapping[str, Any]] | None) -> list[Limit]:
    """REQUEST_WEIGHT entries of exchangeInfo / WS ``rateLimits`` (interval × intervalNum)."""
    out = []
    for rl in rate_limits or ():
        if str(rl.get("rateLimitType", "")).upper() != "REQUEST_WEIGHT":
            continue
        base = INTERVAL_MS.get(str(rl.get("interval", "")).upper())
        try:
            num, limit = int(rl.get("intervalNum", 1)), int(rl["limit"])
        except (KeyError, TypeError, ValueError):
            continue
        if base and num > 0 and limit > 0:
            out.append(Limit(base * num, limit))
    return out


def counts_from_rate_limits(rate_limits: Iterable[Mapping[str, Any]] | None) -> dict[int, int]:
    """WS API ``rateLimits[].count`` of REQUEST_WEIGHT entries: interval_ms -> used."""
    out = {}
    for rl in rate_limits or ():
        if str(rl.get("rateLimitType", "")).upper() != "REQUEST_WEIGHT" or "count" not in rl:
            continue
        base = INTERVAL_MS.get(str(rl.get("interval", "")).upper())
        with contextlib.suppress(TypeError, ValueError):
            if base:
                out[base * int(rl.get("intervalNum", 1))] = int(rl["count"])
    return out


def used_from_headers(headers: Mapping[str, str]) -> dict[int, int]:
    """``X-MBX-USED-WEIGHT-1M: 120`` -> {60000: 120}; the header NAME gives the interval."""
    out = {}
    for name, value in headers.items():
        m = _HEADER_RE.match(name)
        if m:
            with contextlib.suppress(ValueError):
                out[int(m.group(1)) * LETTER_MS[m.group(2).upper()]] = int(str(value).strip())
    return out


def limit_from_text(msg: str | None) -> Limit | None:
    """Binance's 429 text names the limit: "current limit is 6000 request weight per 1 MINUTE"."""
    m = _LIMIT_TEXT_RE.search(msg or "")
    if not m:
        return None
    return Limit(int(m.group(2)) * INTERVAL_MS[m.group(3).upper()], int(m.group(1)))


@dataclass(frozen=True)
class Reservation:
    weight: int
    at_ms: int  # server time when the weight was reserved (just before sending)
    carried: tuple[int, ...] = ()  # intervals whose NEXT window counts this weight too (reserved near the end)


class _State:
    """Parsed state; tolerant of a missing or corrupt document (starts empty)."""

    def __init__(self, raw: dict[str, Any]) -> None:
        try:
            self._load(raw)
        except (ValueError, TypeError, AttributeError):
            log.warning("weight budget state was unreadable; starting it afresh")
            self._load({})

    def _load(self, raw: dict[str, Any]) -> None:
        self.limits = [Limit(int(i), int(v)) for i, v in raw.get("limits", [])]
        self.limits_source: str = raw.get("limits_source", "default")
        self.limits_at: int = int(raw.get("limits_at", 0))
        self.windows: dict[int, dict[int, int]] = {
            int(i): {int(w): int(u) for w, u in ws.items()} for i, ws in raw.get("windows", {}).items()
        }
        self.blocked_until: int = int(raw.get("blocked_until", 0))
        self.blocked_kind: str = raw.get("blocked_kind", "")
        self.blocked_msg: str = raw.get("blocked_msg", "")

    def dump(self) -> dict[str, Any]:
        return {
            "limits": [[lim.interval_ms, lim.limit] for lim in self.limits],
            "limits_source": self.limits_source,
            "limits_at": self.limits_at,
            "windows": {str(i): {str(w): u for w, u in ws.items()} for i, ws in self.windows.items()},
            "blocked_until": self.blocked_until,
            "blocked_kind": self.blocked_kind,
            "blocked_msg": self.blocked_msg,
        }

    def used(self, interval_ms: int, window: int) -> int:
        return self.windows.get(interval_ms, {}).get(window, 0)

    def add(self, interval_ms: int, window: int, weight: int) -> None:
        ws = self.windows.setdefault(interval_ms, {})
        ws[window] = ws.get(window, 0) + weight

    def prune(self, now_ms: int, intervals: Iterable[int]) -> None:
        """Forget past windows and intervals no longer in the limits."""
        keep = set(intervals)
        for i in [i for i in self.windows if i not in keep]:
            del self.windows[i]
        for i, ws in self.windows.items():
            cur = now_ms // i
            for w in [w for w in ws if w < cur]:
                del ws[w]


class WeightBudget:
    """Weight budget for one (limiter group, host, egress IP), shared through ``store``. Thread- and process-safe."""

    def __init__(
        self,
        group: str,
        host: str,
        store: BudgetStore | str | Path,
        *,
        egress: str = "",
        fraction: float = 0.9,
        now_ms: Callable[[], int] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        guard_ms: int | None = None,
        max_ban_wait: float = 0.0,
        default_limit: int | None = None,
        clock_error_ms: Callable[[], int] | None = None,
    ) -> None:
        if not 0 < fraction <= 1:
            raise ValueError("weight_fraction must be in (0, 1]")
        self.group, self.host, self.fraction = group, host, fraction
        self.store: BudgetStore = FileStore(store) if isinstance(store, str | Path) else store
        # Binance counts weight per IP: workers behind different egress IPs must not share one count
        self.key = f"{group}@{host}" + (f"@{egress}" if egress else "")
        self._now_ms = now_ms or wall_now_ms
        self._sleep = sleep
        self._guard_ms = guard_ms
        self._clock_error_ms = clock_error_ms or (lambda: 0)
        self.max_ban_wait = max_ban_wait
        self.default_limit = default_limit or WEIGHT_PER_MINUTE.get(group, 1200)
        self.spent = 0  # weight THIS object reserved (this process), for run metadata
        self.waited_s = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"WeightBudget({self.group!r}, {self.host!r}, fraction={self.fraction})"

    @property
    def path(self) -> Path:
        """The state file (file store only)."""
        if not isinstance(self.store, FileStore):
            raise AttributeError(f"the budget of {self.key} is not in a file but in {self.store.describe()}")
        return self.store.path(self.key)

    # -- state ----------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[_State]:
        """Exclusive access to the state; changes are written back when the block exits normally."""
        with self._lock, self.store.locked(self.key) as raw:
            state = _State(raw)
            yield state
            raw.clear()
            raw.update(state.dump())

    def _limits(self, st: _State) -> list[Limit]:
        return st.limits or [Limit(60_000, self.default_limit)]

    def _base_guard_ms(self, interval_ms: int) -> int:
        """Margin for network latency and scheduling: 2 % of the window, 10 ms .. 1 s."""
        if self._guard_ms is not None:
            return self._guard_ms
        return max(10, min(1000, interval_ms // 50))

    def guard_ms(self, interval_ms: int) -> int:
        """How far from a window boundary a reservation must be to surely land on its side of it."""
        return self._base_guard_ms(interval_ms) + max(0, self._clock_error_ms())

    def _settle_margin_ms(self, interval_ms: int) -> int:
        """How far from a boundary a request must have stayed for the server's count to belong to one window."""
        return self._base_guard_ms(interval_ms) // 2 + max(0, self._clock_error_ms())

    def snapshot(self) -> dict[str, Any]:
        """The current state (for tests and status output)."""
        with self._locked() as st:
            st.prune(self._now_ms(), (lim.interval_ms for lim in self._limits(st)))
            return {**st.dump(), "limits": [(lim.interval_ms, lim.limit) for lim in self._limits(st)]}

    # -- limits -------------------------------------------------------------------------------------------------
    def limits_known(self, max_age_ms: int = LIMITS_TTL_MS) -> bool:
        """True when the limits came from Binance (not defaults) within ``max_age_ms``."""
        with self._locked() as st:
            return bool(st.limits) and st.limits_source != "default" and self._now_ms() - st.limits_at < max_age_ms

    def set_limits(self, limits: Iterable[Limit], source: str) -> None:
        limits = sorted(set(limits), key=lambda lim: lim.interval_ms)
        if not limits:
            return
        with self._locked() as st:
            if st.limits != limits or st.limits_source != source:
                log.debug(
                    "weight limits for %s@%s from %s: %s",
                    self.group,
                    self.host,
                    source,
                    [(lim.interval_ms, lim.limit) for lim in limits],
                )
            st.limits, st.limits_source, st.limits_at = limits, source, self._now_ms()

    def ensure_limits(self, fetch: Callable[[], list[Limit]] | None) -> None:
        """Learn the limits once per machine per TTL: one process fetches, the others wait and read the cache."""
        if fetch is None or self.limits_known():
            return
        with self.store.serialized(self.key):
            if self.limits_known():
                return
            limits = fetch()
            if limits:
                self.set_limits(limits, "exchangeInfo")

    # -- reserve / settle ---------------------------------------------------------------------------------------
    def reserve(self, weight: int, endpoint: str = "") -> Reservation:
        """Wait until ``weight`` fits in every window of this host, then count it; returns the reservation."""
        while True:
            wait_ms = self._try_reserve(weight, endpoint)
            if isinstance(wait_ms, Reservation):
                self.spent += weight
                return wait_ms
            self.waited_s += wait_ms / 1000
            self._sleep(wait_ms / 1000)

    def _try_reserve(self, weight: int, endpoint: str) -> Reservation | int:
        with self._locked() as st:
            now = self._now_ms()
            st.prune(now, (lim.interval_ms for lim in self._limits(st)))
            if st.blocked_until > now:
                left = st.blocked_until - now
                if st.blocked_kind == "418" and left / 1000 > self.max_ban_wait:
                    raise errors.IpBanned(
                        until_ms=st.blocked_until,
                        http_status=418,
                        code=-1003,
                        endpoint=endpoint or self.host,
                        msg=st.blocked_msg or None,
                    )
                return left + 1
            wait = 0
            limits = self._limits(st)
            for lim in limits:
                window = now // lim.interval_ms
                used = st.used(lim.interval_ms, window)
                cap = math.floor(lim.limit * self.fraction)
                if used > 0 and used + weight > cap:
                    wait = max(wait, (window + 1) * lim.interval_ms - now + self.guard_ms(lim.interval_ms))
            if wait:
                return wait
            carried = []
            for lim in limits:
                window = now // lim.interval_ms
                st.add(lim.interval_ms, window, weight)
                if (now + self.guard_ms(lim.interval_ms)) // lim.interval_ms != window:
                    st.add(lim.interval_ms, window + 1, weight)  # may be counted by the server in the next one
                    carried.append(lim.interval_ms)
            return Reservation(weight, now, tuple(carried))

    def settle(self, reservation: Reservation | None, used: Mapping[int, int]) -> None:
        """Merge the server's counts (header / WS rateLimits) into the windows they certainly belong to, and take
        back a near-the-end reservation from the next window once its answer proves it landed in its own."""
        if not used and not (reservation and reservation.carried):
            return
        with self._locked() as st:
            now = self._now_ms()  # inside the lock: no other process can have moved on to a later window since
            if reservation is not None:
                self._release_carry(st, reservation, now)
            self._learn_intervals(st, used)
            for interval_ms, count in used.items():
                g = self._settle_margin_ms(interval_ms)
                start = (reservation.at_ms if reservation else now) - g
                window = (now + g) // interval_ms
                if start // interval_ms != window:
                    continue  # sent in one window, answered in the next: the count's window is ambiguous
                ws = st.windows.setdefault(interval_ms, {})
                ws[window] = max(ws.get(window, 0), count)

    def _release_carry(self, st: _State, reservation: Reservation, now: int) -> None:
        """Answered while the server was surely still in the reservation's window: the server counted it there,
        so the copy in the next window only wastes budget (a lot of it when a burst starts just before a
        boundary)."""
        for interval_ms in reservation.carried:
            window = reservation.at_ms // interval_ms
            if (now + self._settle_margin_ms(interval_ms)) // interval_ms != window:
                continue  # may have arrived after the boundary: keep counting it in both windows
            ws = st.windows.get(interval_ms, {})
            if window + 1 in ws:
                ws[window + 1] = max(0, ws[window + 1] - reservation.weight)

    def _learn_intervals(self, st: _State, used: Mapping[int, int]) -> None:
        """A header naming an interval we have no limit for: defaults are replaced, learned limits extended."""
        known = {lim.interval_ms for lim in st.limits}
        new = [i for i in used if i not in known]
        if not new:
            return
        if not st.limits or st.limits_source == "default":
            # e.g. the sandbox at --time-scale 60 says X-MBX-USED-WEIGHT-1S: its limit number stays the same
            st.limits = [Limit(i, self.default_limit) for i in sorted(used)]
            st.limits_source, st.limits_at = "default", self._now_ms()
        else:
            smallest = min(lim.limit for lim in st.limits)
            st.limits = sorted([*st.limits, *(Limit(i, smallest) for i in new)], key=lambda lim: lim.interval_ms)

    def block(self, until_ms: int, kind: str, msg: str | None = None) -> None:
        """Pause every process using this host until ``until_ms`` (server time): after a 429 or 418."""
        with self._locked() as st:
            if until_ms > st.blocked_until or (kind == "418" and st.blocked_kind != "418"):
                st.blocked_until = max(until_ms, st.blocked_until)
                st.blocked_kind, st.blocked_msg = kind, (msg or "")[:300]
        log.warning("%s@%s: all requests paused until %s (HTTP %s)", self.group, self.host, fmt_ms(until_ms), kind)

    def learn_from_text(self, msg: str | None) -> None:
        lim = limit_from_text(msg)
        if lim is None:
            return
        with self._locked() as st:
            if st.limits_source in ("default", "429") or not st.limits:
                st.limits, st.limits_source, st.limits_at = [lim], "429", self._now_ms()

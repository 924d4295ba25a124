"""Request-weight accounting per IP and limiter group, in fixed windows aligned to epoch multiples (like Binance).

Scaling: the 1-minute window becomes ``60 / time_scale`` seconds, rounded to whole seconds (at least 1 s), and is
advertised exactly the same way in exchangeInfo ``rateLimits`` (interval/intervalNum) and in the
``X-MBX-USED-WEIGHT-<intervalNum><letter>`` header: scale 1 -> 1M, scale 10 -> 6S, scale 60 -> 1S, scale 0.5 -> 2M.

Binance behaviour modelled (docs/binance-facts.md §Rate limits, §Rate-limit responses: 429, 418 and Retry-After):
weight counted when a request is received (also for requests that are then rejected); over the limit -> HTTP 429 +
Retry-After; sending again before Retry-After elapsed -> HTTP 418 IP ban (2 minutes scaled, doubling per repeat
offence, capped at 3 days scaled), Retry-After = ban left.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from pipeline.sandbox.auth import ApiError


@dataclass(frozen=True)
class Interval:
    seconds: int

    @property
    def ms(self) -> int:
        return self.seconds * 1000

    @property
    def letter_num(self) -> tuple[str, int]:
        s = self.seconds
        if s % 86400 == 0:
            return "D", s // 86400
        if s % 3600 == 0:
            return "H", s // 3600
        if s % 60 == 0:
            return "M", s // 60
        return "S", s

    @property
    def name(self) -> str:
        return {"S": "SECOND", "M": "MINUTE", "H": "HOUR", "D": "DAY"}[self.letter_num[0]]

    @property
    def num(self) -> int:
        return self.letter_num[1]

    @property
    def header(self) -> str:
        letter, num = self.letter_num
        return f"X-MBX-USED-WEIGHT-{num}{letter}"


def scaled_interval(time_scale: float, base_seconds: int = 60) -> Interval:
    return Interval(max(1, round(base_seconds / time_scale)))


@dataclass
class _State:
    window: int = -1
    used: int = 0
    cooldown_until: int = 0  # 429 state: a request before this instant earns a ban
    ban_until: int = 0
    bans: int = 0


@dataclass
class WeightLimiter:
    limits: dict[str, int]  # group -> limit per window
    interval: Interval
    ban_ms: int
    max_ban_ms: int
    states: dict[tuple[str, str], _State] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    count_429: int = 0
    count_418: int = 0
    weight_total: dict[str, int] = field(default_factory=dict)

    def rate_limits(self, group: str) -> list[dict]:
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": self.interval.name,
                "intervalNum": self.interval.num,
                "limit": self.limits[group],
            }
        ]

    def used(self, ip: str, group: str, now_ms: int) -> int:
        with self.lock:
            st = self.states.get((ip, group))
            if st is None or st.window != now_ms // self.interval.ms:
                return 0
            return st.used

    def charge(self, ip: str, group: str, weight: int, now_ms: int) -> int:
        """Count ``weight``; return the used weight of the window, or raise 429/418 as an ApiError."""
        with self.lock:
            st = self.states.setdefault((ip, group), _State())
            window = now_ms // self.interval.ms
            if st.window != window:
                st.window, st.used = window, 0
            if st.ban_until > now_ms:
                self.count_418 += 1
                raise self._banned(st, now_ms)
            st.used += weight
            self.weight_total[group] = self.weight_total.get(group, 0) + weight
            if st.cooldown_until > now_ms:
                # kept sending while told to back off -> automated IP ban, escalating
                ban = min(self.ban_ms * 2**st.bans, self.max_ban_ms)
                st.bans += 1
                st.ban_until = now_ms + max(ban, 1000)
                st.cooldown_until = 0
                self.count_418 += 1
                raise self._banned(st, now_ms)
            limit = self.limits[group]
            if st.used > limit:
                window_end = (window + 1) * self.interval.ms
                retry = max(1, math.ceil((window_end - now_ms) / 1000))
                st.cooldown_until = now_ms + retry * 1000
                self.count_429 += 1
                letter_name = f"{self.interval.num} {self.interval.name}"
                raise ApiError(
                    429,
                    -1003,
                    f"Too much request weight used; current limit is {limit} request "
                    f"weight per {letter_name}. Please use WebSocket Streams for live "
                    "updates to avoid polling the API.",
                    headers={"Retry-After": str(retry)},
                    data={"retryAfter": now_ms + retry * 1000, "serverTime": now_ms},
                )
            return st.used

    def _banned(self, st: _State, now_ms: int) -> ApiError:
        retry = max(1, math.ceil((st.ban_until - now_ms) / 1000))
        return ApiError(
            418,
            -1003,
            f"Way too much request weight used; IP banned until {st.ban_until}. Please "
            "use WebSocket Streams for live updates to avoid bans.",
            headers={"Retry-After": str(retry)},
            data={"retryAfter": st.ban_until, "serverTime": now_ms},
        )

    def reset(self) -> None:
        with self.lock:
            self.states.clear()

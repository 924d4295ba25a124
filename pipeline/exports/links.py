"""What an ``…/asyn/id`` answer says about its link, whatever types Binance uses, and how long to wait between
download attempts while it lives.

Expiry comes from ``expirationTimestamp`` first (epoch ms, a number or a numeric string; ``-1`` or absent means
none); only without one does ``isExpired`` decide, read as a boolean, a string (``"true"``/``"false"``) or null.
See docs/binance-facts.md §isExpired and §Export link lifetime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXPIRY_MARGIN_MS = 5_000  # a link this close to its expirationTimestamp is treated as expired
# Download attempts while a link lives: the wait before attempt n+1 is BACKOFF_S * 2**(n-1), capped (seconds, scaled
# like every pacing by the chain's time scale).
DOWNLOAD_ATTEMPTS = 8
BACKOFF_S = 5.0
BACKOFF_CAP_S = 300.0


def expiration_ms(info: dict[str, Any]) -> int | None:
    """``expirationTimestamp`` as epoch ms, or None when the answer has none (absent, null, -1, not a number)."""
    value = info.get("expirationTimestamp")
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value.lstrip("-").isdigit():
            return None
        value = int(value)
    if isinstance(value, int | float) and value > 0:
        return int(value)
    return None


def is_expired_flag(value: Any) -> bool | None:
    """``isExpired`` as a boolean: True/False, "true"/"false" (any case), 1/0; None for null or anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value) if value in (0, 1) else None
    if isinstance(value, str):
        return {"true": True, "false": False, "1": True, "0": False}.get(value.strip().lower())
    return None


@dataclass(frozen=True)
class LinkState:
    expires_ms: int | None
    expired: bool


def link_state(info: dict[str, Any], now_ms: int) -> LinkState:
    """Whether the link of a completed answer is still usable at ``now_ms``."""
    expires = expiration_ms(info)
    if expires is not None:
        return LinkState(expires, now_ms >= expires - EXPIRY_MARGIN_MS)
    return LinkState(None, bool(is_expired_flag(info.get("isExpired"))))


def backoff_s(attempt: int) -> float:
    """Unscaled seconds to wait after failed attempt ``attempt`` (1-based)."""
    return min(BACKOFF_S * 2 ** (attempt - 1), BACKOFF_CAP_S)

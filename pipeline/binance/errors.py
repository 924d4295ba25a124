"""Typed Binance errors whose messages say what failed AND what to do about it.

Every error subclasses :class:`BinanceError` and carries ``code`` (Binance's numeric code or None), ``http_status``
(HTTP status, or the WS API ``status``) and ``endpoint`` (path or WS method, never a URL with its query string:
that holds the signature). Messages never contain the API key, secret or private key.

:func:`from_response` maps an error answer to the right class: first by Binance code, then by HTTP status.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.errors import (
    ConfigurationError,
    CredentialError,
    OrderlakeError,
    PermanentError,
    QuotaError,
    TransientError,
)
from pipeline.times import fmt_ms

# Binance-side trouble whatever the HTTP status: internal error, disconnected, unexpected answer, backend timeout,
# overloaded. A read may be retried; a create call answered so has an UNKNOWN outcome.
SERVER_BUSY_CODES = frozenset({-1000, -1001, -1006, -1007, -1008})


class BinanceError(OrderlakeError):
    """Family root: something Binance (or the way to it) did not do as asked. Every subclass is also a
    :class:`TransientError` or a :class:`PermanentError`: that, not its code, decides whether it is retried."""

    hint = ""

    def __init__(
        self,
        message: str = "",
        *,
        code: int | None = None,
        http_status: int | None = None,
        endpoint: str = "",
        msg: str | None = None,
    ) -> None:
        self.code = code
        self.http_status = http_status
        self.endpoint = endpoint
        self.msg = msg  # Binance's own text, verbatim
        if not message:
            message = self._default_message()
        super().__init__(message)

    def _default_message(self) -> str:
        what = f"{self.endpoint}: Binance answered"
        if self.http_status is not None:
            what += f" HTTP {self.http_status}"
        if self.code is not None:
            what += f" code {self.code}"
        if self.msg:
            what += f" ({self.msg})"
        return f"{what}. {self.hint}".strip()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, http_status={self.http_status}, endpoint={self.endpoint!r})"


class InvalidSignature(BinanceError, CredentialError):
    hint = (
        "The signature was rejected (-1022): the secret / private key does not belong to BINANCE_API_KEY, or "
        "the key type is wrong (an Ed25519/RSA key needs BINANCE_PRIVATE_KEY_FILE, an HMAC key needs "
        "BINANCE_API_SECRET). Check both values; this is not retried."
    )


class TimestampRejected(BinanceError, ConfigurationError):
    """-1021 after one clock re-sync (the retry loop does that re-sync): this machine's clock must be fixed."""

    hint = (
        "The request timestamp was outside recvWindow (-1021): this machine's clock drifts from Binance's. "
        "We re-synced the clock offset and retried once and it still failed: enable NTP (timedatectl / "
        "chronyd) and check the network latency."
    )


class ApiKeyRejected(BinanceError, CredentialError):
    hint = (
        "The API key was rejected: check BINANCE_API_KEY (right key, right environment: production vs "
        "testnet/sandbox), that this machine's public IP is on the key's IP whitelist, and that the key has "
        "'Enable Reading' (plus Futures / Portfolio Margin permission for those endpoints)."
    )


class BadSymbol(BinanceError, PermanentError):
    hint = (
        "Binance does not know this symbol, or the pair/contract is closed (-1121 spot, -4141/-4144 futures): "
        "delisted or misspelt. Skip it and record it; a delisted pair's history only comes from exports or "
        "the website's statements."
    )


class WindowTooLarge(BinanceError, PermanentError):
    hint = (
        "The startTime..endTime window is too large (-1127 / -4165): split it (spot allOrders/allOrderList: "
        "at most 24 h per request; futures allOrders: less than 7 days; exports: at most 1 year)."
    )


class OrderArchived(BinanceError, PermanentError):
    hint = (
        "The order is archived (-2026: canceled/expired with zero fill more than 90 days ago); Binance no "
        "longer returns it. Record it as archived."
    )


class NoSuchOrder(BinanceError, PermanentError):
    hint = "Binance has no such order (-2013); check the id and symbol."


class InvalidParameter(BinanceError, PermanentError):
    hint = "Binance rejected a parameter; this is a bug in the request we built (or an API change). Not retried."


class RateLimited(BinanceError, TransientError):
    """HTTP 429: too much weight. ``retry_after`` is in seconds; every process pauses the host that long."""

    def __init__(self, message: str = "", *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)

    def _default_message(self) -> str:
        wait = f"{self.retry_after:.1f} s" if self.retry_after is not None else "the Retry-After time"
        why = self.msg or "too many requests"
        return (
            f"{self.endpoint}: rate limited by Binance (HTTP {self.http_status}, {why})."
            f" All requests to this host pause for {wait}; if this repeats, lower weight_fraction or stop "
            "other programs using this IP, otherwise Binance escalates to an IP ban (418)."
        )


class IpBanned(BinanceError, PermanentError):
    """HTTP 418: this IP is banned until ``until_ms`` (epoch ms). Not transient: a ban lasts minutes to days and
    grows with every request sent during it, so nothing retries it; it is a wait until a known time."""

    def __init__(self, message: str = "", *, until_ms: int | None = None, **kw: Any) -> None:
        self.until_ms = until_ms
        super().__init__(message, **kw)

    def _default_message(self) -> str:
        until = fmt_ms(self.until_ms) if self.until_ms is not None else "an unknown time"
        return (
            f"{self.endpoint}: this IP is BANNED by Binance until {until} "
            f"(HTTP {self.http_status}, {self.msg or 'IP banned'}). We stopped instead of waiting; every "
            "orderlake process on this machine stays paused for that host until the ban ends. Run again "
            "after that time, with fewer parallel jobs or a lower weight_fraction."
        )


class ServerError(BinanceError, TransientError):
    hint = (
        "Binance had an internal problem or was busy (5xx, -1000/-1001/-1006/-1007/-1008); reads were retried "
        "with back-off and it persisted. Try again later."
    )


class OutcomeUnknown(BinanceError, PermanentError):
    """A non-idempotent call (an export request) may or may not have been executed. Never retried: asking again
    could spend a second download id; a person checks the website first."""


class ExportQuotaExhausted(BinanceError, QuotaError):
    hint = (
        "Binance says the monthly export quota for this endpoint is used up (the website's download page "
        "shares it). No more export requests this month; the quota resets next month."
    )


class TransportError(BinanceError, TransientError):
    """Connection failure or timeout (no HTTP answer)."""


class UnexpectedResponse(BinanceError, PermanentError):
    """HTML/garbage instead of JSON with a non-error status (captive portal, wrong base URL...). The same page
    with a 5xx/408 status is a busy gateway: a :class:`ServerError`."""


class BinanceAPIError(BinanceError, PermanentError):
    """Any other error answer (a code this module does not map, the WAF's 403)."""

    hint = "See Binance's error codes (docs/binance-facts.md §Error codes)."


_BY_CODE: dict[int, type[BinanceError]] = {
    -1022: InvalidSignature,
    -1021: TimestampRejected,
    -5028: TimestampRejected,  # futures: timestamp outside the matching engine's recvWindow -> same handling
    -2015: ApiKeyRejected,
    -2014: ApiKeyRejected,
    -2008: ApiKeyRejected,
    -1099: ApiKeyRejected,  # futures: "Not found, unauthenticated, or unauthorized"
    -1121: BadSymbol,
    -4141: BadSymbol,  # futures: "Symbol is closed" (delisted contract)
    -4144: BadSymbol,  # futures: invalid pair
    -1127: WindowTooLarge,
    -4165: WindowTooLarge,  # futures: "Maximum time interval is 7 days"
    -2026: OrderArchived,
    -2013: NoSuchOrder,
    **{c: ServerError for c in SERVER_BUSY_CODES},  # also when it arrives with a 4xx status
    **{
        c: InvalidParameter
        for c in (-1100, -1101, -1102, -1103, -1104, -1105, -1106, -1111, -1128, -1130, -1131, -1023)
    },
}

_BANNED_UNTIL = re.compile(r"banned until (\d{12,14})", re.IGNORECASE)


def ban_until_from_msg(msg: str | None) -> int | None:
    """Binance's 418 text is "... IP banned until <epoch ms>. ..."."""
    m = _BANNED_UNTIL.search(msg or "")
    return int(m.group(1)) if m else None


def from_response(
    *,
    http_status: int | None,
    code: int | None,
    msg: str | None,
    endpoint: str,
    retry_after_s: float | None = None,
    ban_until_ms: int | None = None,
) -> BinanceError:
    """Build the error for a Binance error answer (REST body or WS ``error``)."""
    kw: dict[str, Any] = {"code": code, "http_status": http_status, "endpoint": endpoint, "msg": msg}
    if http_status == 418:
        return IpBanned(until_ms=ban_until_ms or ban_until_from_msg(msg), **kw)
    if http_status == 429:
        return RateLimited(retry_after=retry_after_s, **kw)
    cls = _BY_CODE.get(code) if code is not None else None
    if cls is not None:
        return cls(**kw)
    if http_status in (401, 403) and code is None:
        return (
            ApiKeyRejected(**kw)
            if http_status == 401
            else BinanceAPIError(
                f"{endpoint}: HTTP 403 (Binance's web application firewall blocked the request, {msg or 'no detail'})."
                " Check the parameters and whether this IP/region may use the API.",
                **kw,
            )
        )
    if http_status is not None and (http_status >= 500 or http_status == 408):  # 408: Binance's backend timed out
        return ServerError(**kw)
    return BinanceAPIError(**kw)

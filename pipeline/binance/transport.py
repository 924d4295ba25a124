"""REST transport: pooled requests.Session, signing, weight budget, retries and error mapping in one place.

The retry rules (docs/design/budget.md §Retries in the transport) are decided by the error's type: only a
:class:`pipeline.errors.TransientError` is retried, and only for an idempotent call. A non-idempotent call (export
creation) is never repeated: an answer that leaves its outcome open becomes :class:`errors.OutcomeUnknown`.

Nothing here logs or raises a URL with its query string (it carries the signature) or any key material.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from pipeline.binance import errors
from pipeline.binance.budget import Limit, Reservation, WeightBudget, limits_from_rate_limits, used_from_headers
from pipeline.binance.clock import ServerClock
from pipeline.binance.credentials import Credentials
from pipeline.binance.facts import IP_BAN_MIN_MS
from pipeline.binance.signing import encode_query, sign_rest
from pipeline.errors import TransientError

log = logging.getLogger(__name__)

_QUERY_RE = re.compile(r"\?[^\s'\")]*")


class _MaskedStr(str):
    """Header value whose repr hides it (requests' header dicts repr their values)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


def sanitize(text: str, redact: Iterable[str] = ()) -> str:
    """Drop query strings (signatures) and any known secret from a text meant for a message or a log."""
    text = _QUERY_RE.sub("?…", text)
    for value in redact:
        if value:
            text = text.replace(value, "***")
    return text


def snippet(body: bytes, redact: Iterable[str] = (), limit: int = 120) -> str:
    """A short, printable preview of a body for error messages."""
    text = body[: limit * 4].decode("utf-8", errors="replace")
    text = re.sub(r"\s+", " ", text)
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    text = sanitize(text, redact)
    return text[:limit] + ("…" if len(text) > limit else "")


@dataclass
class RetryPolicy:
    """Bounded retries; delays in seconds."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    max_rate_limit_retries: int = 3
    max_ban_wait: float = 0.0

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        delay = min(self.base_delay * 2 ** (attempt - 1), self.max_delay)
        return delay * (1 + self.jitter * rand())


def call_with_retries(
    send: Callable[[], Any],
    *,
    name: str,
    clock: ServerClock,
    retry: RetryPolicy,
    sleep: Callable[[float], None],
    rand: Callable[[], float] = random.random,
    idempotent: bool = True,
) -> Any:
    """``send()`` under the client's rules, shared by the REST and WS API transports.

    -1021: re-sync the clock and retry once. 418 (permanent): a ban is waited out only if it ends within
    ``max_ban_wait``. 429: the budget already waits out ``Retry-After``; give up after ``max_rate_limit_retries``.
    Any other :class:`TransientError` (5xx, timeouts, dropped connections): jittered exponential backoff. A
    non-idempotent call (an export download id spends monthly quota) is never repeated blindly.
    """
    attempt, resynced, limited = 0, False, 0
    while True:
        attempt += 1
        try:
            return send()
        except errors.TimestampRejected as exc:
            if resynced:
                raise errors.TimestampRejected(
                    f"{name}: Binance rejected the timestamp (-1021: {exc.msg}) although we re-synced the "
                    f"clock (offset now {clock.offset_ms} ms) and retried once. {exc.hint}",
                    code=exc.code,
                    http_status=exc.http_status,
                    endpoint=name,
                    msg=exc.msg,
                ) from None
            resynced = True
            log.info("%s: -1021, re-syncing the %s clock and retrying once", name, clock.name)
            clock.sync()
        except errors.IpBanned as exc:  # the budget blocks the host until the ban ends: the next send() waits
            if not idempotent or ((exc.until_ms or 0) - clock.now_ms()) / 1000 > retry.max_ban_wait:
                raise
        except errors.RateLimited:
            limited += 1
            if not idempotent or limited > retry.max_rate_limit_retries:
                raise
        except TransientError as exc:
            if not idempotent or attempt >= retry.max_attempts:
                raise
            delay = retry.backoff(attempt, rand)
            log.warning(
                "%s failed (%s); retry %d/%d in %.1f s",
                name,
                type(exc).__name__,
                attempt,
                retry.max_attempts - 1,
                delay,
            )
            sleep(delay)


def unknown_outcome(
    endpoint: str, why: str, *, http_status: int | None = None, code: int | None = None, msg: str | None = None
) -> errors.OutcomeUnknown:
    return errors.OutcomeUnknown(
        f"{endpoint}: the request was sent but its outcome is UNKNOWN ({why}). It is not retried: Binance may "
        "have executed it, e.g. created an export download id and spent one of this month's export quota. Before "
        "asking again, check the Binance website's download history (Orders > Export / Download) and the export "
        "ledger (data/state/export_ledger.sqlite) for a download id covering this range.",
        http_status=http_status,
        code=code,
        endpoint=endpoint,
        msg=msg,
    )


def _not_sent(exc: requests.RequestException) -> bool:
    """True when the connection was never established, so the request certainly did not reach Binance."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    name = type(reason).__name__
    return name in ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError")


class RestTransport:
    """One Binance REST surface (spot, futures or papi): base URL + limiter group."""

    def __init__(
        self,
        base_url: str,
        group: str,
        *,
        credentials: Credentials,
        budget: WeightBudget,
        clock: ServerClock,
        session: requests.Session,
        timeout: float | tuple[float, float] = 10.0,
        recv_window: int = 5000,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        limits_path: tuple[str, int] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc
        self.group = group
        self.credentials = credentials
        self.budget = budget
        self.clock = clock
        self.session = session
        self.timeout = timeout if isinstance(timeout, tuple) else (min(5.0, timeout), timeout)
        self.recv_window = recv_window
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rand = rand
        self._limits_path = limits_path  # (exchangeInfo path, weight) used to learn the limits, if any
        self._limits_checked = limits_path is None

    def __repr__(self) -> str:
        return f"RestTransport({self.base_url!r}, group={self.group!r})"

    # -- public -------------------------------------------------------------------------------------------------
    def call(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        weight: int,
        signed: bool = False,
        idempotent: bool = True,
        method: str = "GET",
    ) -> Any:
        """Send one request (with the retry policy above) and return the parsed JSON."""
        if signed:
            self.credentials.require_signing(path)  # fail before spending weight
        self._ensure_limits()
        return call_with_retries(
            lambda: self._once(method, path, params or {}, weight, signed, idempotent),
            name=path,
            clock=self.clock,
            retry=self.retry,
            sleep=self._sleep,
            rand=self._rand,
            idempotent=idempotent,
        )

    # -- internals ----------------------------------------------------------------------------------------------
    def _ensure_limits(self) -> None:
        if self._limits_checked:
            return
        self._limits_checked = True  # before fetching: the fetch goes through call() itself
        path, weight = self._limits_path  # type: ignore[misc]

        def fetch() -> list[Limit]:
            return limits_from_rate_limits(self.call(path, weight=weight).get("rateLimits"))

        try:
            self.budget.ensure_limits(fetch)
        except (errors.IpBanned, errors.ApiKeyRejected):
            raise
        except errors.BinanceError as exc:
            log.warning(
                "could not learn %s rate limits from %s (%s); using defaults and response headers",
                self.group,
                path,
                type(exc).__name__,
            )

    def _build(self, params: Mapping[str, Any], signed: bool) -> tuple[str, dict[str, str]]:
        items = [(k, v) for k, v in params.items() if v is not None]
        headers: dict[str, str] = {}
        if not signed:
            return encode_query(items), headers
        api_key, signer = self.credentials.require_signing("signed request")
        items += [("recvWindow", self.recv_window), ("timestamp", self.clock.timestamp())]
        headers["X-MBX-APIKEY"] = _MaskedStr(api_key)
        return sign_rest(encode_query(items), signer), headers

    def _redact(self) -> tuple[str, ...]:
        return self.credentials.redactions()

    def _once(
        self, method: str, path: str, params: Mapping[str, Any], weight: int, signed: bool, idempotent: bool
    ) -> Any:
        if signed and self.clock.offset_ms is None:
            self.clock.sync()  # before reserving: the budget's windows are placed on the server's clock
        # Reserve BEFORE signing: reserve() may sleep into the next window (up to a minute on Binance), and a
        # timestamp taken before that sleep would be outside recvWindow (-1021) by the time the request leaves.
        reservation = self.budget.reserve(weight, path)
        query, headers = self._build(params, signed)
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        started = time.monotonic()
        try:
            resp = self.session.request(method, url, headers=headers, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            detail = sanitize(f"{type(exc).__name__}: {exc}", self._redact())
            if not idempotent and not _not_sent(exc):
                raise unknown_outcome(path, f"no answer: {detail}") from None
            raise errors.TransportError(
                f"{path}: no answer from {self.host} ({detail}). Reads are retried with back-off; if it persists "
                "check the network / proxy and the base URL setting.",
                endpoint=path,
            ) from None
        elapsed = (time.monotonic() - started) * 1000
        used = used_from_headers(resp.headers)
        self.budget.settle(reservation, used)
        log.debug(
            "%s %s weight=%d -> HTTP %s in %.0f ms (used %s)",
            method,
            path,
            weight,
            resp.status_code,
            elapsed,
            used or "-",
        )
        return self._answer(resp, path, idempotent, reservation)

    def _answer(self, resp: requests.Response, path: str, idempotent: bool, reservation: Reservation) -> Any:
        status = resp.status_code
        try:
            data = json.loads(resp.content)
        except ValueError:
            ctype = resp.headers.get("Content-Type", "?")
            what = (
                f"{path}: expected JSON from {self.host} but got HTTP {status}, Content-Type {ctype!r}, "
                f"body starting {snippet(resp.content, self._redact())!r}"
            )
            if not idempotent:
                raise unknown_outcome(path, what, http_status=status) from None
            busy = status >= 500 or status == 408  # a gateway or maintenance page: may pass
            raise (errors.ServerError if busy else errors.UnexpectedResponse)(
                what + ". A proxy, captive portal, maintenance page or a wrong base URL (BINANCE_*_URL) answers "
                "instead of the Binance API.",
                http_status=status,
                endpoint=path,
            ) from None
        if 200 <= status < 300 and not _is_error_body(data):
            return data
        return self._raise(resp, data, path, idempotent)

    def _raise(self, resp: requests.Response, data: Any, path: str, idempotent: bool) -> Any:
        status = resp.status_code
        code = data.get("code") if isinstance(data, dict) and isinstance(data.get("code"), int) else None
        msg = str(data.get("msg")) if isinstance(data, dict) and data.get("msg") is not None else None
        msg = sanitize(msg, self._redact()) if msg else msg
        now = self.clock.now_ms()
        retry_after = _retry_after_s(resp.headers.get("Retry-After"))
        if status == 429 or (code == -1003 and status != 418):
            self.budget.learn_from_text(msg)
            wait = retry_after if retry_after is not None else 1.0
            self.budget.block(now + int(wait * 1000), "429", msg)
        ban_until = None
        if status == 418:
            wait_ms = int(retry_after * 1000) if retry_after else IP_BAN_MIN_MS
            ban_until = errors.ban_until_from_msg(msg) or now + wait_ms
            self.budget.block(ban_until, "418", msg)
        if not idempotent and (status >= 500 or status == 408 or code in errors.SERVER_BUSY_CODES):
            raise unknown_outcome(path, f"HTTP {status}, code {code}: {msg}", http_status=status, code=code, msg=msg)
        raise errors.from_response(
            http_status=status, code=code, msg=msg, endpoint=path, retry_after_s=retry_after, ban_until_ms=ban_until
        )


def _is_error_body(data: Any) -> bool:
    """Some endpoints answer HTTP 200 with {"code": <negative>, "msg": ...} for an error."""
    return isinstance(data, dict) and isinstance(data.get("code"), int) and data["code"] < 0 and "msg" in data


def _retry_after_s(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def make_session(pool_size: int = 10) -> requests.Session:
    """A pooled session WITHOUT urllib3 retries (they would silently re-send non-idempotent calls)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = "orderlake/0.1"
    return session


class _RedactSignatures(logging.Filter):
    """urllib3 logs request lines with the full query string at DEBUG: hide the signature value."""

    _sig = re.compile(r"(signature=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                self._sig.sub(r"\1***", a) if isinstance(a, str) else a
                for a in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        return True


_urllib3_log = logging.getLogger("urllib3.connectionpool")
if not any(isinstance(f, _RedactSignatures) for f in _urllib3_log.filters):
    _urllib3_log.addFilter(_RedactSignatures())

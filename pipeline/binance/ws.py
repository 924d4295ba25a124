"""Spot WebSocket API client (docs/binance-facts.md §Spot WebSocket API): one connection reused for every request.

Every request is signed on its own, which works for HMAC, Ed25519 and RSA keys alike (``session.logon`` would need
Ed25519). The ``rateLimits`` of each answer feed the shared weight budget; a 429/418 ``retryAfter`` is epoch ms; a
dropped connection or a ``serverShutdown`` event is reopened and the read retried (every method here is a read).
Design: docs/design/budget.md §Retries in the transport.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from pipeline.binance import errors
from pipeline.binance.budget import WeightBudget, counts_from_rate_limits, limits_from_rate_limits
from pipeline.binance.clock import ServerClock
from pipeline.binance.credentials import Credentials
from pipeline.binance.facts import IP_BAN_MIN_MS, WS_CONNECT_WEIGHT
from pipeline.binance.signing import sign_ws
from pipeline.binance.spot import SpotApi
from pipeline.binance.transport import RetryPolicy, call_with_retries, sanitize, snippet

log = logging.getLogger(__name__)

# websockets logs every frame at DEBUG (frames carry apiKey): give it a logger that never emits DEBUG.
_frames_log = logging.getLogger("pipeline.binance.ws.frames")
_frames_log.setLevel(logging.WARNING)
_frames_log.propagate = False


class SpotWs(SpotApi):
    """Spot methods over the WS API; same names and return shapes as :class:`pipeline.binance.spot.SpotRest`."""

    def __init__(
        self,
        url: str,
        *,
        credentials: Credentials,
        budget: WeightBudget,
        clock: ServerClock | None = None,
        timeout: float = 10.0,
        recv_window: int = 5000,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.url = url
        self.host = urlsplit(url).netloc
        self.credentials = credentials
        self.budget = budget
        self.clock = clock or ServerClock(self._server_ms, name="spot-ws")
        self.timeout = timeout
        self.recv_window = recv_window
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rand = rand
        self._conn: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._reopen = False
        self.connections = 0

    def __repr__(self) -> str:
        return f"SpotWs({sanitize(self.url)!r})"

    # -- connection ---------------------------------------------------------------------------------------------
    def _connect(self) -> ClientConnection:
        if self._conn is not None and not self._reopen:
            return self._conn
        self.close()
        self.budget.reserve(WS_CONNECT_WEIGHT, "ws connect")
        try:
            self._conn = connect(
                self.url, open_timeout=self.timeout, close_timeout=2, max_size=64 << 20, logger=_frames_log, proxy=None
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            raise errors.TransportError(
                f"WS API {self.host}: cannot connect ({type(exc).__name__}: {sanitize(str(exc))}). Check "
                "BINANCE_WS_API_URL and the network, or use BINANCE_SPOT_TRANSPORT=rest.",
                http_status=status,
                endpoint="ws connect",
            ) from None
        self._reopen = False
        self.connections += 1
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a broken socket: nothing to do
                log.debug("WS close failed", exc_info=False)

    # -- requests -----------------------------------------------------------------------------------------------
    def request(
        self, method: str, params: Mapping[str, Any] | None = None, *, weight: int, signed: bool = False
    ) -> Any:
        """One WS API call with the retry policy of the REST transport (all WS methods here are reads)."""
        if signed:
            self.credentials.require_signing(method)
        return call_with_retries(
            lambda: self._once(method, dict(params or {}), weight, signed),
            name=f"WS {method}",
            clock=self.clock,
            retry=self.retry,
            sleep=self._sleep,
            rand=self._rand,
        )

    def _once(self, method: str, params: dict[str, Any], weight: int, signed: bool) -> Any:
        with self._lock:
            conn = self._connect()
            params = {k: v for k, v in params.items() if v is not None}
            if signed and self.clock.offset_ms is None:
                self.clock.sync()
            reservation = self.budget.reserve(weight, method)  # may sleep: sign afterwards (fresh timestamp)
            if signed:
                api_key, signer = self.credentials.require_signing(method)
                params.update(apiKey=api_key, recvWindow=self.recv_window, timestamp=self.clock.timestamp())
                params = sign_ws(params, signer)
            req_id = next(self._ids)
            frame = json.dumps({"id": req_id, "method": method, "params": params}, separators=(",", ":"))
            try:
                conn.send(frame)
                reply = self._receive(conn, req_id, method)
            except (ConnectionClosed, OSError, TimeoutError) as exc:
                self._reopen = True  # state unknown (a late answer could still arrive): start afresh
                raise errors.TransportError(
                    f"WS API {method}: connection lost or timed out "
                    f"({type(exc).__name__}); retried on a new connection.",
                    endpoint=method,
                ) from None
        limits = limits_from_rate_limits(reply.get("rateLimits"))
        if limits:
            self.budget.set_limits(limits, "ws rateLimits")
        self.budget.settle(reservation, counts_from_rate_limits(reply.get("rateLimits")))
        status = reply.get("status")
        if status == 200 and "result" in reply:
            return reply["result"]
        return self._raise(reply, method)

    def _receive(self, conn: ClientConnection, req_id: int, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            text = conn.recv(timeout=left)
            try:
                reply = json.loads(text)
            except ValueError:
                raw = text.encode() if isinstance(text, str) else text
                raise errors.UnexpectedResponse(
                    f"WS API {method}: expected a JSON frame but got {snippet(raw, self._redact())!r}", endpoint=method
                ) from None
            if not isinstance(reply, dict):
                continue
            event = reply.get("event")
            if isinstance(event, dict) and event.get("e") == "serverShutdown":
                # finish this request, then reconnect (docs/binance-facts.md §Spot WS API connections)
                self._reopen = True
                continue
            if reply.get("id") == req_id:
                return reply
            # an answer to an earlier, abandoned request: skip it

    def _redact(self) -> tuple[str, ...]:
        return self.credentials.redactions()

    def _raise(self, reply: Mapping[str, Any], method: str) -> Any:
        status = reply.get("status") if isinstance(reply.get("status"), int) else None
        err = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        code = err.get("code") if isinstance(err.get("code"), int) else None
        msg = sanitize(str(err["msg"]), self._redact()) if err.get("msg") is not None else None
        data = err.get("data") if isinstance(err.get("data"), dict) else {}
        now = self.clock.now_ms()
        retry_at = data.get("retryAfter") if isinstance(data.get("retryAfter"), int) else None  # epoch MS
        if status == 429:
            self.budget.learn_from_text(msg)
            self.budget.block(retry_at or now + 1000, "429", msg)
        if status == 418:
            retry_at = retry_at or errors.ban_until_from_msg(msg) or now + IP_BAN_MIN_MS
            self.budget.block(retry_at, "418", msg)
            self._reopen = True  # the server closes the connection after a 418
        retry_s = max(0.0, (retry_at - now) / 1000) if retry_at else None
        if status is None:
            raise errors.UnexpectedResponse(
                f"WS API {method}: answer without status/result (keys {sorted(reply)[:8]})", endpoint=method
            )
        raise errors.from_response(
            http_status=status,
            code=code,
            msg=msg,
            endpoint=method,
            retry_after_s=retry_s,
            ban_until_ms=retry_at if status == 418 else None,
        )

    def _server_ms(self) -> int:
        return int(self.request("time", weight=1)["serverTime"])

    # -- SpotApi hooks ------------------------------------------------------------------------------------------
    def _call(self, name: str, params: Mapping[str, Any], *, weight: int, signed: bool) -> Any:
        return self.request(_WS_METHODS[name], params, weight=weight, signed=signed)


_WS_METHODS = {
    "time": "time",
    "exchange_info": "exchangeInfo",
    "account": "account.status",
    "all_orders": "allOrders",
    "all_order_lists": "allOrderLists",
    "open_orders": "openOrders.status",
    "open_order_lists": "openOrderLists.status",
    "order": "order.status",
    "order_list": "orderList.status",
    "my_trades": "myTrades",
}

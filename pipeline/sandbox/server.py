"""aiohttp server exposing every surface of the sandbox on ONE port, run in a background thread.

Paths: Binance's own (``/api/v3/...``, ``/fapi/v1/...``, ``/papi/v1/...``, WS API at ``/ws-api/v3``), export files
under ``/sandbox-files/<token>/<name>`` (S3-like: 403 XML once expired) and sandbox-only helpers under
``/sandbox/...`` (never mixed into Binance paths).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from pipeline.sandbox import key_permissions
from pipeline.sandbox.auth import (
    ApiError,
    check_timing,
    mandatory,
    parse_query,
    rest_signed_payload,
    ws_payload,
    ws_value,
)
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.core import Endpoint, Exchange, Params
from pipeline.sandbox.exportfiles import s3_denied_xml, s3_expired_xml
from pipeline.storage.atomic import atomic_write

logger = logging.getLogger(__name__)

JSON_CT = "application/json;charset=UTF-8"
HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway"
    b"</h1></center>\r\n<hr><center>CloudFront</center>\r\n</body>\r\n</html>\r\n"
)
HTML_404 = b"<html><body><h2>404 Not found</h2></body></html>"
UNKNOWN_5XX = ApiError(503, -1000, "Unknown error, please check your request or try again later.")
TIMEOUT_5XX = ApiError(
    503, -1007, "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


class App:
    """Request handling glue between aiohttp and ``Exchange``."""

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex
        self.cfg = ex.cfg
        ex.endpoints[key_permissions.RESTRICTIONS_PATH] = key_permissions.restrictions_endpoint(ex.cfg)

    def build(self) -> web.Application:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_route("*", "/ws-api/v3", self.ws_api)
        app.router.add_get("/sandbox/stats", self.sandbox_stats)
        app.router.add_get("/sandbox/truth", self.sandbox_truth)
        app.router.add_post("/sandbox/reset-weights", self.sandbox_reset)
        app.router.add_get("/sandbox/clock", self.sandbox_clock)
        app.router.add_post("/sandbox/clock/advance", self.sandbox_advance)
        app.router.add_get("/sandbox-files/{token}/{name}", self.export_file)
        app.router.add_route("*", "/{tail:.*}", self.rest)
        return app

    # ---------------------------------------------------------------------------------------------------------
    # REST

    def _json(
        self, status: int, obj: Any, group: str | None, ip: str, extra: dict[str, str] | None = None
    ) -> web.Response:
        headers = {"Content-Type": JSON_CT}
        if group is not None:
            headers[self.ex.interval.header] = str(self.ex.limiter.used(ip, group, self.ex.clock.wire()))
        if extra:
            headers.update(extra)
        return web.Response(status=status, body=_dumps(obj), headers=headers)

    def _error(self, err: ApiError, group: str | None, ip: str) -> web.Response:
        codes = self.ex.stats_data.errors_by_code
        codes[str(err.code)] = codes.get(str(err.code), 0) + 1
        return self._json(err.http_status, err.body(), group, ip, err.headers)

    def _fault(self) -> str | None:
        cfg = self.cfg
        total = cfg.fault_rate_5xx + cfg.fault_rate_html + cfg.fault_rate_timeout
        if total <= 0:
            return None
        r = self.ex.fault_rng.random()
        kind = None
        if r < cfg.fault_rate_5xx:
            kind = "5xx"
        elif r < cfg.fault_rate_5xx + cfg.fault_rate_html:
            kind = "html"
        elif r < total:
            kind = "timeout"
        if kind:
            faults = self.ex.stats_data.faults
            faults[kind] = faults.get(kind, 0) + 1
        return kind

    async def _fault_response(self, kind: str, group: str, ip: str) -> web.Response:
        if kind == "html":
            return web.Response(status=502, body=HTML_502, headers={"Content-Type": "text/html"})
        if kind == "timeout":
            await asyncio.sleep(self.cfg.fault_timeout_seconds)
            return self._error(TIMEOUT_5XX, group, ip)
        return self._error(UNKNOWN_5XX, group, ip)

    async def rest(self, request: web.Request) -> web.StreamResponse:
        ep = self.ex.endpoints.get(request.path)
        if ep is None:
            return web.Response(status=404, body=HTML_404, headers={"Content-Type": "text/html"})
        if request.method not in ("GET", "POST") or (request.method == "POST" and ep.group == "spot"):
            return web.Response(status=405, body=b"", headers={"Content-Type": "text/html"})
        ip = request.remote or "?"
        stats = self.ex.stats_data
        stats.requests += 1
        stats.by_endpoint[ep.name] = stats.by_endpoint.get(ep.name, 0) + 1
        raw_query = request.rel_url.raw_query_string
        body = (await request.text()) if request.can_read_body else ""
        pairs = parse_query(raw_query) + parse_query(body)
        items: dict[str, str] = {}
        duplicate = False
        for name, value in pairs:
            duplicate = duplicate or name in items
            items[name] = value
        params = Params(items)
        try:
            self.ex.limiter.charge(ip, ep.group, ep.weight(params), self.ex.clock.wire())
        except ApiError as err:
            return self._error(err, ep.group, ip)
        is_create = ep.name.endswith("/asyn")
        fault = self._fault()
        if fault and not is_create:
            return await self._fault_response(fault, ep.group, ip)
        try:
            if duplicate:
                raise ApiError(400, -1101, "Duplicate values for a parameter detected.")
            if ep.signed:
                self._check_rest_auth(request, raw_query, body, items)
                key_permissions.authorize(self.cfg, ep.group, ip)
            result = self._call(ep, params)
            if ep.strict_params:
                params.check_all_read()
        except ApiError as err:
            return self._error(err, ep.group, ip)
        if fault:  # export create: the id IS created and counted, but the answer is lost
            return await self._fault_response(fault, ep.group, ip)
        return self._json(200, result, ep.group, ip)

    def _call(self, ep: Endpoint, params: Params, *, ws: bool = False) -> Any:
        if ep.name.endswith("/asyn/id"):
            market = "usdm" if ep.name.startswith("/fapi") else "pm_um"
            kind = ep.name.rsplit("/", 3)[-3]  # /fapi/v1/<kind>/asyn/id
            return self.ex.export_link(params, market, kind, base_url=self.ex.base_url)
        if ep.name == "/api/v3/allOrderList":
            return self.ex.spot_all_order_lists(params, ws=ws)
        return ep.handler(params)

    def _check_rest_auth(self, request: web.Request, raw_query: str, body: str, items: dict[str, str]) -> None:
        self.ex.verifier.check_key(request.headers.get("X-MBX-APIKEY"))
        payload, sig = rest_signed_payload(raw_query, body)
        if sig is None or sig == "":
            raise mandatory("signature")
        if not items.get("timestamp"):
            raise mandatory("timestamp")
        if payload is None:  # signature not the last parameter
            raise ApiError(400, -1022, "Signature for this request is not valid.")
        self.ex.verifier.verify(payload, sig)
        check_timing(items, self.ex.clock.wire())

    # ---------------------------------------------------------------------------------------------------------
    # WebSocket API

    async def ws_api(self, request: web.Request) -> web.StreamResponse:
        ip = request.remote or "?"
        try:
            self.ex.limiter.charge(ip, "spot", 2, self.ex.clock.wire())  # opening a WS API connection costs 2 weight
        except ApiError as err:
            return self._error(err, "spot", ip)
        self.ex.stats_data.ws_connections += 1
        default_rl = request.query.get("returnRateLimits", "true").lower() != "false"
        ws = web.WebSocketResponse(max_msg_size=1 << 20)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
                continue
            reply, close = self.ws_message(msg.data, ip, default_rl)
            await ws.send_str(_dumps(reply).decode())
            if close:
                await ws.close(code=1008, message=b"IP banned")
                break
        return ws

    def ws_message(self, text: str, ip: str, default_rl: bool) -> tuple[dict, bool]:
        """One WS API request -> (response envelope, close the connection?)."""
        try:
            req = json.loads(text)
        except ValueError:
            return self._ws_error(None, ApiError(400, -1102, "Malformed request."), ip, True), False
        if not isinstance(req, dict):
            return self._ws_error(None, ApiError(400, -1102, "Malformed request."), ip, True), False
        req_id = req.get("id")
        method = req.get("method")
        params = req.get("params", {})
        if params is None:
            params = {}
        if not isinstance(method, str) or not isinstance(params, dict):
            return self._ws_error(req_id, ApiError(400, -1102, "Malformed request."), ip, True), False
        show_rl = default_rl
        if "returnRateLimits" in params:
            show_rl = params["returnRateLimits"] is not False and str(params["returnRateLimits"]) != "false"
        name = method[3:] if method.startswith("v3/") else method
        path = Exchange.WS_METHODS.get(name)
        stats = self.ex.stats_data
        stats.requests += 1
        if path is None:
            # UNCONFIRMED: the exact code for an unknown WS method; -1020 is "This operation is not supported."
            return self._ws_error(req_id, ApiError(400, -1020, "Unknown method."), ip, show_rl), False
        ep = self.ex.endpoints[path]
        key = f"ws:{name}"
        stats.by_endpoint[key] = stats.by_endpoint.get(key, 0) + 1
        items = {k: ws_value(v) for k, v in params.items()}
        p = Params(items)
        try:
            self.ex.limiter.charge(ip, "spot", ep.weight(p), self.ex.clock.wire())
        except ApiError as err:
            return self._ws_error(req_id, err, ip, show_rl), err.http_status == 418
        try:
            if self.cfg.fault_rate_5xx and self.ex.fault_rng.random() < self.cfg.fault_rate_5xx:
                stats.faults["ws_5xx"] = stats.faults.get("ws_5xx", 0) + 1
                raise UNKNOWN_5XX
            if ep.signed:
                self._check_ws_auth(params, items)
                key_permissions.authorize(self.cfg, "spot", ip)
            result = self._call(ep, p, ws=True)
            p.check_all_read()
        except ApiError as err:
            return self._ws_error(req_id, err, ip, show_rl), False
        reply: dict[str, Any] = {"id": req_id, "status": 200, "result": result}
        if show_rl:
            reply["rateLimits"] = self._ws_rate_limits(ip)
        return reply, False

    def _check_ws_auth(self, params: dict[str, Any], items: dict[str, str]) -> None:
        if "apiKey" not in params:
            raise mandatory("apiKey")
        self.ex.verifier.check_key(items.get("apiKey"))
        if not items.get("signature"):
            raise mandatory("signature")
        if not items.get("timestamp"):
            raise mandatory("timestamp")
        self.ex.verifier.verify(ws_payload(params), items["signature"])  # WS: the signature is not URL-encoded
        check_timing(items, self.ex.clock.wire())

    def _ws_rate_limits(self, ip: str) -> list[dict]:
        rl = self.ex.limiter.rate_limits("spot")[0]
        return [{**rl, "count": self.ex.limiter.used(ip, "spot", self.ex.clock.wire())}]

    def _ws_error(self, req_id: Any, err: ApiError, ip: str, show_rl: bool) -> dict:
        codes = self.ex.stats_data.errors_by_code
        codes[str(err.code)] = codes.get(str(err.code), 0) + 1
        error: dict[str, Any] = err.body()
        if err.data is not None:
            error["data"] = err.data
        reply: dict[str, Any] = {"id": req_id, "status": err.http_status, "error": error}
        if show_rl:
            reply["rateLimits"] = self._ws_rate_limits(ip)
        return reply

    # ---------------------------------------------------------------------------------------------------------
    # export files and sandbox helpers

    async def export_file(self, request: web.Request) -> web.StreamResponse:
        exp = self.ex.files.get(request.match_info["token"])
        rid = secrets.token_hex(8).upper()
        xml = {"Content-Type": "application/xml"}
        if exp is None or exp.data is None or request.match_info["name"] != exp.file_name:
            return web.Response(status=403, body=s3_denied_xml(rid), headers=xml)
        now = self.ex.clock.wire()
        if now >= exp.expires_ms:
            return web.Response(status=403, body=s3_expired_xml(exp.expires_ms, now, rid), headers=xml)
        self.ex.stats_data.export_file_downloads += 1
        data = exp.data
        headers = {
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="{exp.file_name}"',
            "ETag": f'"{rid.lower()}"',
        }
        n = self.ex.stats_data.export_file_downloads  # 1-based: the n-th transfer is cut when the rate steps up
        rate = self.cfg.fault_rate_truncate
        if rate and int(n * rate) > int((n - 1) * rate):
            faults = self.ex.stats_data.faults
            faults["truncate"] = faults.get("truncate", 0) + 1
            resp = web.StreamResponse(status=200, headers=headers)
            resp.content_length = len(data)
            await resp.prepare(request)
            await resp.write(data[: len(data) // 2])
            transport = request.transport
            if transport is not None:
                transport.close()  # connection dropped mid-body: Content-Length promised more
            return resp
        return web.Response(status=200, body=data, headers=headers)

    async def sandbox_stats(self, request: web.Request) -> web.Response:
        return web.Response(body=_dumps(self.ex.stats()), headers={"Content-Type": JSON_CT})

    async def sandbox_truth(self, request: web.Request) -> web.Response:
        return web.Response(body=_dumps(self.ex.truth()), headers={"Content-Type": JSON_CT})

    async def sandbox_clock(self, request: web.Request) -> web.Response:
        return web.Response(body=_dumps(self._clock()), headers={"Content-Type": JSON_CT})

    async def sandbox_advance(self, request: web.Request) -> web.Response:
        """Test-only: ``POST /sandbox/clock/advance?days=N`` moves the market and wire clocks N days forward."""
        try:
            days = float(request.query.get("days", "0"))
            self.ex.clock.advance(days=days)
        except ValueError as exc:
            return web.Response(status=400, body=_dumps({"error": str(exc)}), headers={"Content-Type": JSON_CT})
        return web.Response(body=_dumps(self._clock()), headers={"Content-Type": JSON_CT})

    def _clock(self) -> dict[str, int]:
        return {"market_ms": self.ex.clock.market(), "server_time_ms": self.ex.clock.wire()}

    async def sandbox_reset(self, request: web.Request) -> web.Response:
        self.ex.limiter.reset()
        return web.Response(body=b"{}", headers={"Content-Type": JSON_CT})


class SandboxExchange:
    """The sandbox exchange in a background thread (own event loop); use as a context manager.

    >>> with SandboxExchange(SandboxConfig(), port=0) as sx:   # doctest: +SKIP
    ...     sx.url, sx.ws_url
    """

    def __init__(self, cfg: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.cfg = cfg or SandboxConfig()
        self.host = host
        self.port = port
        self.exchange = Exchange(self.cfg)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # --- lifecycle ---
    def start(self) -> SandboxExchange:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(512)
        self.port = sock.getsockname()[1]
        self.exchange.base_url = self.url
        self._thread = threading.Thread(target=self._serve, args=(sock,), name="sandbox-exchange", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"sandbox failed to start: {self._error}") from self._error
        return self

    def _serve(self, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._runner = web.AppRunner(App(self.exchange).build(), access_log=None, handle_signals=False)
            loop.run_until_complete(self._runner.setup())
            site = web.SockSite(self._runner, sock, shutdown_timeout=0.5)
            loop.run_until_complete(site.start())
        except BaseException as exc:  # surfaced to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None

    close = stop

    def __enter__(self) -> SandboxExchange:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- public API ---
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/ws-api/v3"

    def truth(self, as_of_ms: int | None = None) -> dict[str, Any]:
        return self.exchange.truth(as_of_ms)

    def advance(self, *, days: float = 0, ms: int = 0) -> int:
        """Move the sandbox's clocks forward (tests simulate days of daily runs this way); returns the market time."""
        return self.exchange.clock.advance(days=days, ms=ms)

    def orders_as_of(self, market: str, now_ms: int) -> list[dict]:
        return self.exchange.orders_as_of(market, now_ms)

    def write_truth(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write(path, json.dumps(self.truth(), indent=1))
        return path

    def stats(self) -> dict[str, Any]:
        return self.exchange.stats()

    def reset_weights(self) -> None:
        self.exchange.limiter.reset()

    def __repr__(self) -> str:
        return f"SandboxExchange(url={self.url!r}, seed={self.cfg.seed})"


def run_sandbox(
    cfg: SandboxConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[SandboxExchange], None] | None = None,
    stop_event: threading.Event | None = None,
) -> int:
    """Run until Ctrl-C (or ``stop_event``); used by ``orderlake sandbox``."""
    with SandboxExchange(cfg, host=host, port=port) as sx:
        if on_ready:
            on_ready(sx)
        stop = stop_event or threading.Event()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0

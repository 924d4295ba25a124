"""Several sandbox accounts behind one port, as many Binance accounts behind one egress IP.

A REST request goes to the account of its ``X-MBX-APIKEY`` (public calls to the first account); export files are
found by their token in every account. Request weight is counted per IP across every account, as Binance does
(docs/binance-facts.md §Rate limits and weights): a fleet behind one IP shares one limit. Each account keeps its
own generated history, uid, key, export quota and truth. The WebSocket API serves the first account only.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from aiohttp import web

from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.core import Exchange
from pipeline.sandbox.server import App


class FleetApp:
    """Routes each request to the :class:`App` of one account; every account shares the first one's limiter."""

    def __init__(self, exchanges: list[Exchange]) -> None:
        shared = exchanges[0].limiter
        for ex in exchanges:
            ex.limiter = shared
        self.apps = [App(ex) for ex in exchanges]
        self.by_key = {ex.cfg.api_key: app for ex, app in zip(exchanges, self.apps, strict=True)}
        if len(self.by_key) != len(exchanges):
            raise ValueError("every sandbox account needs its own API key")

    def build(self) -> web.Application:
        first = self.apps[0]
        app = web.Application(client_max_size=1 << 20)
        app.router.add_route("*", "/ws-api/v3", first.ws_api)
        app.router.add_get("/sandbox/stats", first.sandbox_stats)
        app.router.add_get("/sandbox-files/{token}/{name}", self.export_file)
        app.router.add_route("*", "/{tail:.*}", self.rest)
        return app

    async def rest(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get("X-MBX-APIKEY")
        app = self.by_key.get(key, self.apps[0]) if key else self.apps[0]
        return await app.rest(request)  # an unknown key reaches the first account, which rejects it as Binance does

    async def export_file(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        for app in self.apps:
            if token in app.ex.files:
                return await app.export_file(request)
        return await self.apps[0].export_file(request)  # the S3-like 403 for an unknown token


class FleetSandbox:
    """``accounts`` sandbox accounts on one loopback port, in a background thread; use as a context manager."""

    def __init__(self, configs: list[SandboxConfig], host: str = "127.0.0.1", port: int = 0) -> None:
        if not configs:
            raise ValueError("a fleet sandbox needs at least one account")
        self.configs = configs
        self.host, self.port = host, port
        self.exchanges = [Exchange(cfg) for cfg in configs]
        self._app = FleetApp(self.exchanges)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws-api/v3"

    def start(self) -> FleetSandbox:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(1024)
        self.port = sock.getsockname()[1]
        for ex in self.exchanges:
            ex.base_url = self.url  # export links point at this one port
        self._thread = threading.Thread(target=self._serve, args=(sock,), name="sandbox-fleet", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the fleet sandbox did not start within 30 s")
        return self

    def _serve(self, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(self._app.build(), access_log=None, handle_signals=False)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.SockSite(runner, sock, shutdown_timeout=0.5).start())
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> FleetSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def truth(self, index: int) -> dict[str, Any]:
        return self.exchanges[index].truth()

    def stats(self) -> dict[str, Any]:
        """The shared limiter's counts (429s and 418s across every account) and each account's download ids."""
        limiter = self.exchanges[0].limiter
        return {
            "http_429": limiter.count_429,
            "http_418": limiter.count_418,
            "weight": dict(limiter.weight_total),
            "export_ids_created": [ex.stats()["export_ids_created"] for ex in self.exchanges],
        }

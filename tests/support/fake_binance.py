"""Tiny scripted loopback servers speaking Binance's wire formats (REST and WS API), for the client's own tests.

Each REST path has a queue of scripted answers (the last one repeats); every request is recorded (path, raw query,
headers). Not a Binance simulation — that is pipeline/sandbox — but exact control over status codes, headers,
bodies, delays and dropped connections.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.sync.server import serve

# The scripted WS server's frame logs would show the apiKey the CLIENT sent: keep them out of captured logs, so a
# leak check only sees what our own code logs.
_ws_server_log = logging.getLogger("fake_binance.ws")
_ws_server_log.setLevel(logging.WARNING)
_ws_server_log.propagate = False


@dataclass
class Answer:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str -> sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # close the connection without answering

    def payload(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if isinstance(self.body, str):
            return self.body.encode(), self.headers.get("Content-Type", "text/html")
        return json.dumps(self.body if self.body is not None else {}).encode(), "application/json;charset=UTF-8"


def err(status: int, code: int, msg: str, **headers: str) -> Answer:
    return Answer(status, {"code": code, "msg": msg}, {k.replace("_", "-"): v for k, v in headers.items()})


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    client_port: int = 0  # the client's TCP port: one port for many requests = a pooled keep-alive connection

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))


class FakeBinance:
    def __init__(self) -> None:
        self.routes: dict[str, list[Answer]] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.set("/api/v3/time", lambda: Answer(200, {"serverTime": int(time.time() * 1000)}))
        self.set("/fapi/v1/time", lambda: Answer(200, {"serverTime": int(time.time() * 1000)}))
        self.set("/api/v3/exchangeInfo", Answer(200, {"rateLimits": [], "symbols": []}))
        self.set("/fapi/v1/exchangeInfo", Answer(200, {"rateLimits": [], "symbols": []}))

    def set(self, path: str, *answers: Any) -> None:
        """Script ``path``: answers are Answer objects or callables returning one (the last repeats)."""
        with self.lock:
            self.routes[path] = list(answers)

    def calls(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _next(self, path: str) -> Answer:
        with self.lock:
            queue = self.routes.get(path)
            if not queue:
                return Answer(404, "<html><body>404 Not found</body></html>", {"Content-Type": "text/html"})
            item = queue.pop(0) if len(queue) > 1 else queue[0]
        return item() if callable(item) else item

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else 40 ms per answer (Nagle + delayed ACK)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                with fake.lock:
                    fake.seen.append(
                        Seen("GET", parts.path, parts.query, dict(self.headers.items()), self.client_address[1])
                    )
                ans = fake._next(parts.path)
                if ans.delay:
                    time.sleep(ans.delay)
                if ans.drop:
                    self.close_connection = True
                    self.connection.close()
                    return
                body, ctype = ans.payload()
                self.send_response(ans.status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in ans.headers.items():
                    if k.lower() != "content-type":
                        self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    @contextmanager
    def running(self) -> Iterator[FakeBinance]:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.server.daemon_threads = True
        thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


@contextmanager
def fake_binance() -> Iterator[FakeBinance]:
    with FakeBinance().running() as fb:
        yield fb


@contextmanager
def fake_ws(answer: Callable[[dict, int], Any]) -> Iterator[dict]:
    """WS API server: ``answer(request, connection_number)`` -> reply dict, None (close the connection) or a raw
    str. ``time`` is always answered with the real clock; ``info["requests"]`` records every request."""
    info: dict[str, Any] = {"connections": 0, "requests": []}

    def handler(ws) -> None:
        info["connections"] += 1
        n = info["connections"]
        for text in ws:
            req = json.loads(text)
            info["requests"].append(req)
            if req["method"] == "time":
                ws.send(json.dumps({"id": req["id"], "status": 200, "result": {"serverTime": int(time.time() * 1000)}}))
                continue
            reply = answer(req, n)
            if reply is None:
                ws.close()
                return
            ws.send(reply if isinstance(reply, str) else json.dumps(reply))

    with serve(handler, "127.0.0.1", 0, logger=_ws_server_log) as server:
        info["url"] = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/ws-api/v3"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield info
        server.shutdown()

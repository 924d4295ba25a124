"""Shared fakes for the export-chain tests (no tests here): a scripted client, a settable clock, a loopback
file server that records every request it gets, and the fixture :func:`ids_within_ledger` (autouse everywhere,
through tests/conftest.py)."""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipeline.binance import errors
from pipeline.binance import exports as binance_exports
from pipeline.exports.chain import ExportChain
from pipeline.exports.ledger import ExportLedger, LedgerEntry
from pipeline.sandbox import export_dialects

# The columns the order-export file carries, compared with the API rows (the sandbox writes the fuller header of
# docs/export-files.md §USDⓈ-M order history: column orders).
FROM_EXPORT = (
    "order_id",
    "symbol",
    "type",
    "side",
    "position_side",
    "price",
    "avg_price",
    "orig_qty",
    "executed_qty",
    "cum_quote",
    "stop_price",
    "status",
    "client_order_id",
    "time_in_force",
    "activate_price",
    "price_rate",
    "time",
    "update_time",
)
# A sandbox whose futures history spans more than a year but whose spot side is tiny; durations run 3600x faster
# (an hour of export processing takes a second), and the chain's pacing is divided by the same factor.
EXPORT_SPEED = 3600.0
EXPORT_SANDBOX = {
    "time_scale": EXPORT_SPEED,
    "export_processing_seconds": 3600.0,
    "futures_history_days": 400,
    "listed_symbols": 10,
    "active_symbols": 2,
    "history_days": 3,
    "busy_day_orders": 5,
}  # links keep the default 24 h, on the sandbox's clock: they expire only when a test advances it
USDM = binance_exports.EXPORT_ENDPOINTS[("usdm", "order")]
PM = binance_exports.EXPORT_ENDPOINTS[("pm_um", "order")]
API_KEY = "SECRET-API-KEY-do-not-send-7f3a"
T0 = datetime(2025, 3, 15, 12, 0, tzinfo=UTC).timestamp()


def make_error(name: str, message: str, *, http_status: int | None = None, code: int | None = None) -> Exception:
    """A pipeline.binance.errors instance without depending on its constructor signature."""
    cls = getattr(errors, name)
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.code, exc.http_status, exc.endpoint = code, http_status, "/fapi/v1/order/asyn"
    return exc


class Clock:
    """Injectable ``now``: seconds since the epoch, moved by hand."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class FakeRest:
    """``all_orders`` of the client's ``futures`` / ``papi`` surface: scripted order objects, calls recorded."""

    def __init__(self) -> None:
        self.orders: list[dict[str, Any]] = []
        self.calls: list[tuple[int, int]] = []
        self.symbols: list[str | None] = []  # the symbol of each call (Portfolio Margin requires one)
        self.error: BaseException | None = None

    def all_orders(
        self,
        symbol: str | None = None,
        *,
        order_id: int | None = None,
        start_time: int,
        end_time: int,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        assert end_time - start_time < 7 * 86_400_000  # Binance: window < 7 days
        self.calls.append((start_time, end_time))
        if self.error is not None:
            raise self.error
        self.symbols.append(symbol)
        rows = [o for o in self.orders if start_time <= o["time"] <= end_time and symbol in (None, o["symbol"])]
        return rows[:limit]


class FakeClient:
    """Implements the two export methods of pipeline.binance's client and allOrders, scripted per test.

    ``issued`` counts the download ids it handed out: errors hand out none.
    """

    api_key = API_KEY

    def __init__(self, *, avg_cost_ms: int | None = 7_241_837) -> None:
        self.avg_cost_ms = avg_cost_ms
        self.futures, self.papi = FakeRest(), FakeRest()
        self.issued = 0
        self.creates: list[tuple[str, int, int]] = []
        self.links: list[str] = []
        self.create_error: BaseException | None = None
        self.link_error: BaseException | None = None
        self.link_script: dict[str, list[dict[str, Any]]] = {}
        self._next = 900_000_000_000_000_000

    def create_export(self, endpoint: Any, start_ms: int, end_ms: int) -> dict[str, Any]:
        self.creates.append((endpoint.market, start_ms, end_ms))
        if self.create_error is not None:
            raise self.create_error
        self._next += 1
        self.issued += 1
        return {"downloadId": str(self._next), "avgCostTimestampOfLast30d": self.avg_cost_ms}

    def export_link(self, endpoint: Any, download_id: str) -> dict[str, Any]:
        self.links.append(download_id)
        if self.link_error is not None:
            raise self.link_error
        script = self.link_script.get(download_id)
        if not script:
            return processing(download_id)
        return script.pop(0) if len(script) > 1 else script[0]


def processing(did: str) -> dict[str, Any]:
    return {
        "downloadId": did,
        "status": "processing",
        "url": "",
        "notified": False,
        "expirationTimestamp": -1,
        "isExpired": None,
    }


def completed(did: str, url: str, expires_ms: int, *, pm: bool = False) -> dict[str, Any]:
    out = {
        "downloadId": did,
        "status": "completed",
        "url": url,
        "notified": True,
        "expirationTimestamp": expires_ms,
        "isExpired": None,
    }
    if pm:
        out["s3Link"] = None
    return out


_CLIENTS: dict[Path, set[FakeClient]] = {}


def make_chain(tmp_path: Path, client: FakeClient, clock: Clock, **kw: Any) -> ExportChain:
    kw.setdefault("monthly_limit", 10)
    kw.setdefault("allow_http_loopback", True)
    kw.setdefault("sleep", clock.sleep)  # download retries wait on the test's clock
    _CLIENTS.setdefault(Path(tmp_path), set()).add(client)
    return ExportChain(client, ExportLedger(tmp_path), data_dir=tmp_path, account="main", now=clock, **kw)


def attempt(ledger: ExportLedger, *, start_ms: int = 0, end_ms: int = 86_399_999, now_ms: int = 0) -> LedgerEntry:
    """A usdm/order attempt row for account "main" (no pacing, room in the quota), as the chain writes it."""
    res = ledger.reserve_attempt(
        market="usdm",
        kind="order",
        api="futures",
        account="main",
        start_ms=start_ms,
        end_ms=end_ms,
        now_ms=now_ms,
        limit=10,
        spacing_ms=0,
        failure_cooldown_ms=0,
    )
    assert res.entry is not None, res
    return res.entry


@pytest.fixture(autouse=True)
def ids_within_ledger():
    """After each test: the fake Binance handed out no more download ids than the ledger counts as spent."""
    _CLIENTS.clear()
    yield
    for data_dir, clients in _CLIENTS.items():
        counted = sum(e.counts_quota for e in ExportLedger(data_dir).entries())
        issued = sum(c.issued for c in clients)
        assert issued <= counted, f"{issued} download ids handed out but the ledger counts {counted}"


def zip_bytes(text: str = "Uid,Time,Order No\r\n1,2025-01-01 00:00:00,5\r\n") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("Binance-Futures-Order-History-202501010000(UTC+8).csv", "\ufeff" + text)
    return buf.getvalue()


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_length: int | None = None  # override (a larger value simulates a truncated transfer)
    no_length: bool = False  # no Content-Length at all: the body ends when the connection closes


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class FileServer:
    """Tiny loopback HTTP server: path -> Route; records every request (path incl. query, headers)."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.seen.append(Seen(self.path, dict(self.headers.items())))
                route = outer.routes.get(self.path.split("?")[0], Route(404, b"not found"))
                self.send_response(route.status)
                for k, v in route.headers.items():
                    self.send_header(k, v)
                n = route.content_length if route.content_length is not None else len(route.body)
                if not route.no_length:
                    self.send_header("Content-Length", str(n))
                self.end_headers()
                self.wfile.write(route.body)
                self.wfile.flush()
                if route.content_length is not None or route.no_length:
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str, query: str = "X-Amz-Signature=abcdef0123&X-Amz-Expires=604800") -> str:
        return f"{self.base}{path}?{query}"

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def create_and_complete(
    chain: ExportChain,
    client: FakeClient,
    clock: Clock,
    url: str,
    *,
    expires_in_s: float = 7 * 86400,
    endpoint: Any = USDM,
) -> str:
    """Request one small range and drive it to ``completed`` with ``url``; returns the download id."""
    from datetime import date

    created = chain.request(endpoint, date(2025, 1, 1), date(2025, 1, 31))
    did = created[0].download_id
    client.link_script[did] = [completed(did, url, int((clock() + expires_in_s) * 1000))]
    clock.advance(3600)
    outcomes = chain.poll_due()
    assert [o.status for o in outcomes] == ["completed"]
    return did


Predicate = Callable[[Any], bool]


def api_orders(n: int = 62) -> list[dict[str, Any]]:
    """Futures order objects spread over January 2025, two a day, some near midnight UTC."""
    out = []
    for i in range(n):
        t = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000) + i * 12 * 3_600_000 + 23 * 3_600_000
        out.append(
            {
                "orderId": 8_389_765_568_816_714_211 - i,
                "symbol": ("BTCUSDT", "ETHUSDT")[i % 2],
                "type": "LIMIT",
                "side": "BUY",
                "positionSide": "BOTH",
                "price": "94123.1",
                "avgPrice": "94123.1",
                "origQty": "0.010",
                "executedQty": "0.010",
                "cumQuote": "941.231",
                "stopPrice": "0",
                "status": "FILLED",
                "clientOrderId": f"c{i}",
                "timeInForce": "GTC",
                "time": t,
                "updateTime": t + 59 * 60_000,
            }
        )
    return [o for o in out if o["updateTime"] < int(datetime(2025, 2, 1, tzinfo=UTC).timestamp() * 1000)]


def zipped(rows: list[dict[str, Any]], offset: int, *, label: int | None = None) -> bytes:
    """The sandbox's export file of ``rows`` in local time ``offset``, its CSV named with ``label``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            export_dialects.file_name(0, offset if label is None else label, "api") + ".csv",
            export_dialects.build_csv(rows, uid=1, offset_minutes=offset, dialect="api"),
        )
    return buf.getvalue()

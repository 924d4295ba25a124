"""Export-file builders shared by the parser, checks and ingest tests: an API-style header, rows, CSV and ZIP bytes."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from pipeline.exports import parsing
from pipeline.exports.parsing import parse_export
from pipeline.storage.schemas import futures_orders

HEADER = [
    "Uid",
    "Time",
    "Order No",
    "Symbol",
    "Type",
    "Side",
    "Position Side",
    "Price",
    "Average Price",
    "Amount",
    "Executed Amount",
    "Executed Quote Amount",
    "Stop Price",
    "Status",
    "Client Order Id",
    "Time In Force",
    "Activate Price",
    "Price Rate",
    "Update Time",
]
NAME8 = "Binance-Futures-Order-History-202403051200(UTC+8).csv"
BIG_ID = 8389765568816714211  # > 2^53: must stay exact


def order(
    order_id: int = BIG_ID, time: str = "2024-03-05 08:00:01", update: str = "2024-03-05 08:00:02", **over: str
) -> dict[str, str]:
    row = {
        "Uid": "123456789",
        "Time": time,
        "Order No": str(order_id),
        "Symbol": "BTCUSDT",
        "Type": "LIMIT",
        "Side": "BUY",
        "Position Side": "BOTH",
        "Price": "66000.10",
        "Average Price": "66000.1000012",
        "Amount": "0.123",
        "Executed Amount": "0.123",
        "Executed Quote Amount": "8118.0123",
        "Stop Price": "0",
        "Status": "FILLED",
        "Client Order Id": "web_abc",
        "Time In Force": "GTC",
        "Activate Price": "",
        "Price Rate": "",
        "Update Time": update,
    }
    row.update(over)
    return row


def csv_bytes(
    rows: list[dict[str, str]],
    header: list[str] = HEADER,
    *,
    bom: bool = True,
    crlf: bool = True,
    sentinel: bool = False,
    quote_all: bool = False,
) -> bytes:
    out = io.StringIO()
    import csv as _csv

    w = _csv.writer(
        out, lineterminator="\r\n" if crlf else "\n", quoting=_csv.QUOTE_ALL if quote_all else _csv.QUOTE_MINIMAL
    )
    w.writerow(header)
    for r in rows:
        w.writerow([r.get(h, "") for h in header])
    text = out.getvalue()
    if sentinel:
        text += parsing.EMPTY_SENTINEL + ("\r\n" if crlf else "\n")
    return (("\ufeff" if bom else "") + text).encode()


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def parse_all(path: Path, **kw: object) -> tuple[pa.Table, parsing.ParseStats]:
    stats = parsing.ParseStats()
    batches = list(parse_export(path, market="usdm", account="main", download_id="777", stats=stats, **kw))
    table = pa.Table.from_batches(batches, schema=futures_orders.SCHEMA)
    return table, stats


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)

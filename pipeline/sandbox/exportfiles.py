"""Futures order-history export files, shaped like the website/API exports (docs/export-files.md).

ZIP holding one CSV: UTF-8 with BOM, CRLF, comma, no quoting; times in the display timezone with second
precision; the offset is only in the file name, e.g. ``(UTC+8)``. Rows: the orders whose ``updateTime`` lies in
[startTime, endTime] (the real selection rule is undocumented; no REST retention rule is applied to exports).
Values are the very strings the API returns, so the export equals the truth exactly (futures times are whole
seconds in the sandbox).
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta

HEADER = (
    "Uid,Time,Order No,Symbol,Type,Side,Position Side,Price,Average Price,Amount,Executed Amount,"
    "Executed Quote Amount,Stop Price,Status,Client Order Id,Time In Force,Activate Price,Price Rate,"
    "Update Time"
)
EMPTY_SENTINEL = "No data matches the criteria."


def offset_label(minutes: int) -> str:
    """``UTC+8``, ``UTC0``, ``UTC--6`` (the double minus seen in real file names), ``UTC+5:30``."""
    if minutes == 0:
        return "UTC0"
    sign = "+" if minutes > 0 else "--"
    h, m = divmod(abs(minutes), 60)
    return f"UTC{sign}{h}" + (f":{m:02d}" if m else "")


def _local(ms: int, offset_minutes: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC) + timedelta(minutes=offset_minutes)
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def csv_name(created_ms: int, offset_minutes: int) -> str:
    stamp = datetime.fromtimestamp(created_ms / 1000, tz=UTC) + timedelta(minutes=offset_minutes)
    return f"Binance-Futures-Order-History-{stamp.strftime('%Y%m%d%H%M')}({offset_label(offset_minutes)}).csv"


def build_csv(rows: list[dict], *, uid: int, offset_minutes: int) -> bytes:
    lines = [HEADER]
    for o in rows:
        lines.append(
            ",".join(
                (
                    str(uid),
                    _local(o["time"], offset_minutes),
                    str(o["orderId"]),
                    o["symbol"],
                    o["type"],
                    o["side"],
                    o["positionSide"],
                    o["price"],
                    o["avgPrice"],
                    o["origQty"],
                    o["executedQty"],
                    o["cumQuote"],
                    o["stopPrice"],
                    o["status"],
                    o["clientOrderId"],
                    o["timeInForce"],
                    o.get("activatePrice", ""),
                    o.get("priceRate", ""),
                    _local(o["updateTime"], offset_minutes),
                )
            )
        )
    if not rows:
        lines.append(EMPTY_SENTINEL)
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def build_zip(rows: list[dict], *, uid: int, offset_minutes: int, created_ms: int) -> tuple[str, bytes]:
    """Return (zip file name, zip bytes)."""
    name = csv_name(created_ms, offset_minutes)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(name, date_time=datetime.fromtimestamp(created_ms / 1000, tz=UTC).timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, build_csv(rows, uid=uid, offset_minutes=offset_minutes))
    return name[:-4] + ".zip", buf.getvalue()


def s3_expired_xml(expires_ms: int, now_ms: int, request_id: str) -> bytes:
    """What an expired pre-signed S3 URL answers (HTTP 403)."""

    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
        f"<Message>Request has expired</Message><Expires>{iso(expires_ms)}</Expires>"
        f"<ServerTime>{iso(now_ms)}</ServerTime><RequestId>{request_id}</RequestId>"
        "<HostId>sandbox</HostId></Error>"
    ).encode()


def s3_denied_xml(request_id: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
        f"<Message>Access Denied</Message><RequestId>{request_id}</RequestId>"
        "<HostId>sandbox</HostId></Error>"
    ).encode()

"""Pieces of the sandbox's export files shared by every dialect (:mod:`pipeline.sandbox.export_dialects`): the
empty-export sentinel, the ``(UTC…)`` label of file names, and what an S3-like file server answers once a link is
no longer valid."""

from __future__ import annotations

from datetime import UTC, datetime

EMPTY_SENTINEL = "No data matches the criteria."


def offset_label(minutes: int) -> str:
    """``UTC+8``, ``UTC0``, ``UTC--6`` (the double minus seen in real file names), ``UTC+5:30``."""
    if minutes == 0:
        return "UTC0"
    sign = "+" if minutes > 0 else "--"
    h, m = divmod(abs(minutes), 60)
    return f"UTC{sign}{h}" + (f":{m:02d}" if m else "")


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

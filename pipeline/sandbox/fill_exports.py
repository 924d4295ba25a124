"""The sandbox's trade-history and transaction (income) history export files, in the dialects of the public record
(``export_trade_dialect``, ``export_income_dialect``). Evidence: docs/export-files.md §Trade history and
docs/export-files.md §Transaction (income) history.

:func:`build_fill_export` takes the trade or income records an export of the range lists (API objects from the
sandbox's futures ledger) and knows nothing of how they were made, so the files agree with REST and the truth.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta

from pipeline.sandbox.exportfiles import EMPTY_SENTINEL, offset_label

TRADE_DIALECTS = ("current", "legacy", "short", "ms")
INCOME_DIALECTS = ("current", "legacy", "full")
_TRADE_HEADERS = {
    "current": "Uid,Time,Symbol,Side,Price,Quantity,Amount,Fee,Realized Profit,Buyer,Maker,Trade ID,Order ID",
    "legacy": "Uid,Time(UTC),Symbol,Side,Position Side,Price,Quantity,Amount,Fee,Realized Profit,Buyer,Maker,"
    "Trade Id,Order Id",
    "short": "Time,Symbol,Side,Price,Quantity,Amount,Fee,Realized Profit,Buyer,Maker,Trade ID,Order ID",
}
_INCOME_HEADERS = {
    "current": "Time,Type,Amount,Asset,Symbol,Transaction ID",
    "legacy": "Date(UTC),type,Amount,Asset,Symbol,Transaction ID",
    "full": "Uid,Time,Type,Amount,Asset,Symbol,Transaction ID,Trade ID,Info",  # UNCONFIRMED: every API field
}
_NAMES = {"trade": "Futures-Trade-History", "income": "Futures-Transaction-History"}


def selected(records: list[dict], start_ms: int, end_ms: int) -> list[dict]:
    """The records an export of [start_ms, end_ms] lists: by their time (a trade or a record never changes)."""
    rows = [r for r in records if start_ms <= r["time"] <= end_ms]
    return sorted(rows, key=lambda r: (r["time"], r.get("id", r.get("tranId"))))


def _local(ms: int, offset_minutes: int, dialect: str) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC) + timedelta(minutes=offset_minutes)
    if dialect == "ms":
        return dt.strftime("%Y-%m-%d %H:%M:%S") + f".{ms % 1000:03d}"
    return dt.strftime("%y-%m-%d %H:%M:%S" if dialect == "short" else "%Y-%m-%d %H:%M:%S")


def _trade_line(t: dict, dialect: str, offset: int, uid: int) -> list[str]:
    short = dialect == "short"
    fee = f"{t['commission']}{t['commissionAsset']}" if short else f"{t['commission']} {t['commissionAsset']}"
    flag = (lambda b: "TRUE" if b else "FALSE") if short else (lambda b: "true" if b else "false")
    head = [] if short else [str(uid)]
    time = [_local(t["time"], offset, dialect)]
    side = [t["symbol"], t["side"]] + ([t["positionSide"].title()] if dialect == "legacy" else [])
    amounts = [t["price"], t["qty"], t["quoteQty"], fee, t["realizedPnl"], flag(t["buyer"]), flag(t["maker"])]
    return [*head, *time, *side, *amounts, str(t["id"]), str(t["orderId"])]


def _income_line(r: dict, dialect: str, offset: int, uid: int) -> list[str]:
    core = [r["incomeType"], r["income"], r["asset"], r["symbol"], str(r["tranId"])]
    if dialect == "full":
        return [str(uid), _local(r["time"], offset, dialect), *core, r["tradeId"], r["info"]]
    return [_local(r["time"], offset, dialect), *core]


def build_fill_csv(kind: str, records: list[dict], *, dialect: str, offset_minutes: int, uid: int) -> bytes:
    """One CSV member of a ``kind`` ("trade" or "income") export; no records give the header and the sentinel."""
    offset = 0 if dialect == "legacy" else offset_minutes  # "Time(UTC)" / "Date(UTC)": labelled UTC
    header = _TRADE_HEADERS.get(dialect, _TRADE_HEADERS["current"]) if kind == "trade" else _INCOME_HEADERS[dialect]
    line = _trade_line if kind == "trade" else _income_line
    lines = [header] + [",".join(line(r, dialect, offset, uid)) for r in records]
    if not records:
        lines.append(EMPTY_SENTINEL)
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def build_fill_export(
    kind: str, records: list[dict], *, dialect: str, offset_minutes: int, uid: int, created_ms: int, suffix: str
) -> tuple[str, bytes]:
    """(zip file name, zip bytes) of a trade or income export listing ``records``."""
    offset = 0 if dialect == "legacy" else offset_minutes
    stamp = datetime.fromtimestamp(created_ms / 1000, tz=UTC) + timedelta(minutes=offset)
    name = f"Binance-{_NAMES[kind]}-{stamp.strftime('%Y%m%d%H%M')}({offset_label(offset)})"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        body = build_fill_csv(kind, records, dialect=dialect, offset_minutes=offset_minutes, uid=uid)
        zf.writestr(f"{name}.csv", body)
    return f"{name}_{suffix}.zip", buf.getvalue()

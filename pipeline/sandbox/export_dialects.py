"""The export-file dialects of the public record, served by the sandbox (``orderlake sandbox --export-dialect``),
and the two row-selection rules (``--export-selection``). Evidence for each: docs/export-files.md.

:func:`build_export` takes a list of order STATES (API order objects as of the export's creation) and knows nothing
about how the sandbox produced them, so a time model of the sandbox's orders can feed it unchanged.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from pipeline.sandbox.exportfiles import EMPTY_SENTINEL, offset_label

DIALECTS = ("api", "legacy", "zh", "website", "ms")
SELECTIONS = ("update", "created")
EMPTY_FORMS = ("full", "short", "alone")
# Damaged files, each described in docs/export-files.md §Refused files
DAMAGES = ("none", "empty_member", "header_only", "cut_rows", "cut_mid_row")

API_HEADER = (
    "Uid,Time,Order No,Symbol,Type,Side,Position Side,Price,Average Price,Amount,Executed Amount,"
    "Executed Quote Amount,Stop Price,Status,Client Order Id,Time In Force,Activate Price,Price Rate,Update Time"
)
_LEGACY = (
    "Uid,Time(UTC),Symbol,Type,Side,Position Side,Price,Average Price,Amount,Executed Amount,Executed Quote Amount,"
    "Stop Price,Status,Client Order Id,Time In Force,Activate Price,Price Rate,Update Time,Order No"
)
_ZH = (
    "用户ID,时间,订单编号,代币名称/币种名称/币对,类型,方向,价格,平均价格,金额,执行金额,已执行报价金额,止损价格,"
    "状态,更新时间"
)
_KEYS = {  # header column -> how a value is taken from an order state
    "api": API_HEADER.split(","),
    "legacy": _LEGACY.replace("Time(UTC)", "Time").split(","),
    "zh": [
        "Uid",
        "Time",
        "Order No",
        "Symbol",
        "Type",
        "Side",
        "Price",
        "Average Price",
        "Amount",
        "Executed Amount",
        "Executed Quote Amount",
        "Stop Price",
        "Status",
        "Update Time",
    ],
}
_WEBSITE_TYPES = {"STOP": "Stop Limit", "TAKE_PROFIT": "Take Profit Limit", "TRAILING_STOP_MARKET": "Trailing Stop"}


def selected(orders: Iterable[dict], start_ms: int, end_ms: int, rule: str) -> list[dict]:
    """The orders an export of [start_ms, end_ms] lists: by last update or by creation time."""
    field = "updateTime" if rule == "update" else "time"
    rows = [o for o in orders if start_ms <= o[field] <= end_ms]
    return sorted(rows, key=lambda o: (o[field], o["orderId"]))


def _local(ms: int, offset_minutes: int, millis: bool) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC) + timedelta(minutes=offset_minutes)
    text = dt.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{ms % 1000:03d}" if millis else text


def _title(value: str) -> str:
    return " ".join(w.capitalize() for w in value.split("_"))


def _value(o: dict, column: str, dialect: str, offset: int, uid: int) -> str:
    millis = dialect == "ms"
    if column == "Uid":
        return str(uid)
    if column in ("Time", "Update Time"):
        return _local(o["time" if column == "Time" else "updateTime"], offset, millis)
    base, quote = o["symbol"][:-4], o["symbol"][-4:]
    plain = {
        "Order No": str(o["orderId"]),
        "Symbol": o["symbol"],
        "Type": o["type"],
        "Side": o["side"],
        "Position Side": o["positionSide"],
        "Price": o["price"],
        "Average Price": o["avgPrice"],
        "Amount": o["origQty"],
        "Executed Amount": o["executedQty"],
        "Executed Quote Amount": o["cumQuote"],
        "Stop Price": o["stopPrice"],
        "Status": o["status"],
        "Client Order Id": o["clientOrderId"],
        "Time In Force": o["timeInForce"],
        "Activate Price": o.get("activatePrice", ""),
        "Price Rate": o.get("priceRate", ""),
    }[column]
    if dialect != "website":
        return plain
    if column == "Type":
        return _WEBSITE_TYPES.get(plain, _title(plain))
    if column in ("Side", "Position Side", "Status"):
        return _title(plain)
    if column in ("Amount", "Executed Amount"):
        return plain + base
    if column == "Executed Quote Amount":
        return plain + quote
    return plain


def build_csv(
    orders: list[dict],
    *,
    dialect: str,
    offset_minutes: int,
    uid: int,
    empty_form: str = "full",
    final_newline: bool = True,
) -> bytes:
    """One CSV member in ``dialect``; no rows gives the ``empty_form`` of the empty export. Whether Binance ends the
    file with a line break is not known (docs/export-files.md §Encoding, line endings and quoting): both are served."""
    offset = 0 if dialect == "legacy" else offset_minutes  # "Time(UTC)": the legacy header is labelled UTC
    header = {"legacy": _LEGACY, "zh": _ZH}.get(dialect, API_HEADER)
    keys = _KEYS.get(dialect, _KEYS["api"])
    lines = [header] + [",".join(_value(o, k, dialect, offset, uid) for k in keys) for o in orders]
    if not orders:
        lines = {"full": [header], "short": ["Uid,Time,Order No"], "alone": []}[empty_form] + [EMPTY_SENTINEL]
    return ("\ufeff" + "\r\n".join(lines) + ("\r\n" if final_newline else "")).encode("utf-8")


def file_name(created_ms: int, offset_minutes: int, dialect: str) -> str:
    offset = 0 if dialect == "legacy" else offset_minutes
    stamp = datetime.fromtimestamp(created_ms / 1000, tz=UTC) + timedelta(minutes=offset)
    kind = "合约订单历史记录" if dialect == "zh" else "Futures-Order-History"
    return f"Binance-{kind}-{stamp.strftime('%Y%m%d%H%M')}({offset_label(offset)})"


def build_export(
    orders: list[dict],
    *,
    dialect: str,
    offset_minutes: int,
    uid: int,
    created_ms: int,
    suffix: str,
    empty_form: str = "full",
    damage: str = "none",
    final_newline: bool = True,
) -> tuple[str, bytes]:
    """(zip file name, zip bytes) of an export listing ``orders`` (order states as of ``created_ms``), damaged as
    ``damage`` says."""
    name = file_name(created_ms, offset_minutes, dialect)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(
            f"{name}.csv", date_time=datetime.fromtimestamp(created_ms / 1000, tz=UTC).timetuple()[:6]
        )
        info.compress_type = zipfile.ZIP_DEFLATED
        body = build_csv(
            orders,
            dialect=dialect,
            offset_minutes=offset_minutes,
            uid=uid,
            empty_form=empty_form,
            final_newline=final_newline,
        )
        if damage == "empty_member":
            body = b""
        elif damage == "header_only":
            body = body.split(b"\r\n", 1)[0] + b"\r\n"
        elif damage == "cut_rows":
            lines = body.split(b"\r\n")
            body = b"\r\n".join(lines[: 1 + (len(lines) - 1) // 2]) + b"\r\n"
        elif damage == "cut_mid_row":  # the generator stopped one character before the end of the last row
            body = body.rstrip(b"\r\n")[:-1]
        zf.writestr(info, body)
    return f"{name}_{suffix}.zip", buf.getvalue()

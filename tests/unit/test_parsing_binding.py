"""Header binding: columns by name in any order, aliases, labels, unknown and missing columns."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.exports.parsing import MissingColumn
from tests.support.export_files import BIG_ID, HEADER, NAME8, csv_bytes, ms, order, parse_all, write_zip


def test_reordered_columns_quotes_unknown_column_and_utc_header(tmp_path: Path) -> None:
    header = [
        "Order ID",
        "Update Time(UTC)",
        "Symbol",
        "Status",
        "Type",
        "Side",
        "Executed Amount",
        "Amount",
        "Price",
        "Average Price",
        "Executed Quote Amount",
        "Time(UTC)",
        "Client Order Id",
        "Fee Tier",
    ]
    rows = [
        order(
            5,
            **{
                "Order ID": "5",
                "Update Time(UTC)": "2024-03-05 10:00:00",
                "Time(UTC)": "2024-03-05 09:00:00",
                "Client Order Id": 'x,"quoted"',
                "Fee Tier": 'VIP "1"\\n',
                "Price": "1,234.5",
            },
        )
    ]
    path = tmp_path / "no-offset-in-name.csv"
    path.write_bytes(csv_bytes(rows, header, quote_all=True))
    table, stats = parse_all(path)
    r = table.to_pylist()[0]
    assert r["order_id"] == 5 and r["price"] == Decimal("1234.5")  # thousands separator stripped
    assert r["client_order_id"] == 'x,"quoted"'
    assert r["update_time"].timestamp() * 1000 == ms("2024-03-05 10:00:00")  # (UTC) header = offset 0
    assert r["utc_offset_minutes"] == 0
    assert json.loads(r["extra"]) == {"Fee Tier": 'VIP "1"\\n'}
    assert any("Fee Tier" in w and "extra" in w for w in stats.warnings)
    assert r["position_side"] is None and r["time_in_force"] is None  # optional columns absent -> NULL


def test_missing_required_column(tmp_path: Path) -> None:
    header = [h for h in HEADER if h != "Status"]
    p = write_zip(tmp_path / "m.zip", {NAME8: csv_bytes([order()], header)})
    with pytest.raises(MissingColumn) as exc:
        parse_all(p)
    assert exc.value.column == "status" and "m.zip" in str(exc.value) and "'Status'" in str(exc.value)


# docs/export-files.md §USDⓈ-M order history: column orders: the API-style core header, the older style (Time(UTC)
# labelled, Update Time not, Order No last) and the sandbox's (= the fuller one with Order No third, no label).
CORE_HEADER = (
    "Uid,Time,Order No,Symbol,Type,Side,Price,Average Price,Amount,Executed Amount,Executed Quote Amount,"
    "Stop Price,Status,Update Time"
)
FULL_HEADER = (
    "Uid,Time(UTC),Symbol,Type,Side,Position Side,Price,Average Price,Amount,Executed Amount,Executed Quote "
    "Amount,Stop Price,Status,Client Order Id,Time In Force,Activate Price,Price Rate,Update Time,Order No"
)


@pytest.mark.parametrize(
    ("header", "name", "offset"),
    [
        (CORE_HEADER, "Binance-Futures-Order-History-202403051200(UTC+3)_ab12.csv", 180),
        (FULL_HEADER, "export.csv", 0),
        (",".join(HEADER), NAME8, 480),
    ],
    ids=["core", "full-time-utc", "sandbox"],
)
def test_every_order_header_variant_binds_by_name(tmp_path: Path, header: str, name: str, offset: int) -> None:
    cols = header.split(",")
    local_time = "2024-03-05 08:00:01"
    row = order(BIG_ID, time=local_time, update="2024-03-05 09:30:00")
    row["Time(UTC)"] = local_time
    path = tmp_path / name
    path.write_bytes(csv_bytes([row], cols))
    table, stats = parse_all(path)
    r = table.to_pylist()[0]
    assert (r["order_id"], r["symbol"], r["status"], r["type"], r["side"]) == (
        BIG_ID,
        "BTCUSDT",
        "FILLED",
        "LIMIT",
        "BUY",
    )
    assert (r["price"], r["orig_qty"], r["cum_quote"]) == (Decimal("66000.1"), Decimal("0.123"), Decimal("8118.0123"))
    assert r["time"].timestamp() * 1000 == ms(local_time) - offset * 60_000
    assert r["update_time"].timestamp() * 1000 == ms("2024-03-05 09:30:00") - offset * 60_000
    assert r["utc_offset_minutes"] == offset and r["extra"] is None and stats.warnings == []

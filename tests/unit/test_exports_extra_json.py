"""``extra`` is JSON written by one encoder on the REST and the export side, valid whatever the values hold.

The export side used to escape by hand and wrote invalid JSON for control characters; the file-to-lake test reads
the stored text back with ``json.loads`` and with DuckDB's JSON functions.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline.exports.ingest import write_export_partitions
from pipeline.spot.fake import make_order
from pipeline.storage import lake
from pipeline.storage.schemas import spot_orders
from pipeline.storage.schemas.columns import extra_from_columns, extra_json, extra_text
from tests.support.export_files import HEADER, NAME8, csv_bytes, order, parse_all, write_zip

# Every C0 control character (NUL too), DEL, quotes, backslashes, line breaks, non-ASCII (CJK, U+2028, an emoji).
NASTY = [
    "bell\x07x",
    'say "hi" \\ back\\slash \\n (literal)',
    "two\r\nlines\nand\ttab",
    "".join(chr(c) for c in range(32)) + "\x7f",
    "币安人生 \u2028 😀",
    "",
    None,
    "plain",
]


def test_vectorised_extra_is_the_encoders_text_row_by_row() -> None:
    columns = {
        "Note": pa.array(NASTY, pa.string()),
        'Fee "Tier"': pa.array(list(reversed(NASTY)), pa.string()),
        "备注": pa.array(["x"] * len(NASTY), pa.string()),
        "a\\b": pa.array(NASTY[2:] + NASTY[:2], pa.string()),
    }
    got = extra_from_columns(columns).to_pylist()
    rows = [{k: col[i].as_py() for k, col in columns.items()} for i in range(len(NASTY))]
    assert got == [extra_text(r) for r in rows]
    assert [json.loads(text) for text in got] == rows
    assert list(json.loads(got[0])) == sorted(columns)  # keys sorted, as the REST side sorts them


def test_rest_extra_uses_the_same_encoder() -> None:
    rows = [{"orderId": 1, "newField": v, "other": [1, "x\x07"]} for v in NASTY]
    got = extra_json(rows, known=["orderId"]).to_pylist()
    assert got == [extra_text({"newField": v, "other": [1, "x\x07"]}) for v in NASTY]
    assert [json.loads(t)["newField"] for t in got] == NASTY
    assert extra_json([{"orderId": 1}], known=["orderId"]).to_pylist() == [None]  # nothing unknown: NULL
    row = make_order("BTCUSDT", 1, 1_709_596_801_000, futureField="bell\x07x")
    table = spot_orders.from_api([row], account="main", source="rest_allOrders", ingested_at=0)
    assert json.loads(table["extra"][0].as_py()) == {"futureField": "bell\x07x"}


def test_control_characters_in_unknown_columns_land_as_valid_json(tmp_path: Path) -> None:
    header = [*HEADER, "Note", 'Fee "Tier"', "备注", "Note"]  # the repeated header gets a key of its own
    repeated = f"Note#{len(header)}"  # its de-duplicated CSV column name
    values = [v for v in NASTY if v is not None]
    rows = [order(i + 1, **{"Note": v, 'Fee "Tier"': f"VIP {i}", "备注": "币安"}) for i, v in enumerate(values)]
    path = write_zip(tmp_path / "x.zip", {NAME8: csv_bytes(rows, header)})
    parsed, _ = parse_all(path)
    data = tmp_path / "data"
    day = date(2024, 3, 5)
    res = write_export_partitions(
        path, data_dir=data, table="futures_orders", market="usdm", account="main", download_id="1", days=[day]
    )
    assert res.rows == len(values)
    stored = lake.read_partition(data, "futures_orders", "main", day).sort_by("order_id")
    texts = stored["extra"].to_pylist()
    assert texts == parsed.sort_by("order_id")["extra"].to_pylist()
    cells = [v or None for v in values]  # an empty cell is NULL, in extra as in every column
    want = [{"Note": v, 'Fee "Tier"': f"VIP {i}", "备注": "币安", repeated: v} for i, v in enumerate(cells)]
    assert [json.loads(t) for t in texts] == want
    con = duckdb.connect()
    got = con.execute(
        """SELECT json_valid(extra), json_extract_string(extra, '/Note'), json_extract_string(extra, '/Fee "Tier"'),
                  json_extract_string(extra, '/备注'), json_extract_string(extra, ?)
           FROM read_parquet(?) ORDER BY order_id""",
        [f"/{repeated}", str(lake.partition_path(data, "futures_orders", "main", day))],
    ).fetchall()
    assert got == [(True, v, f"VIP {i}", "币安", v) for i, v in enumerate(cells)]

"""`orderlake sql` exports are faithful: every id and decimal of every view survives a JSON parser that reads numbers
as doubles (what JavaScript tools do), times are RFC 3339 UTC, CSV and Parquet keep decimals exact."""

from __future__ import annotations

import argparse
import csv
import json
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline.warehouse import cli
from pipeline.warehouse.catalog import CATALOG_FILE, build_catalog, list_views
from pipeline.warehouse.result_formats import COPY_OPTIONS, MAX_SAFE_INTEGER, is_id_column
from tests.support.warehouse import BIG_ID, write_every_table

RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(\d{3})?Z")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = write_every_table(tmp_path_factory.mktemp("exports") / "data")
    build_catalog(data)
    return data


def export(data: Path, query: str, fmt: str, out: Path) -> Path:
    parser = argparse.ArgumentParser()
    cli.add_sql_arguments(parser)
    assert cli.run_sql(parser.parse_args([query, "--format", fmt, "--output", str(out)]), data) == 0
    return out


def catalog_rows(data: Path, query: str) -> tuple[list[str], list[tuple]]:
    con = duckdb.connect(str(data / CATALOG_FILE), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        cur = con.execute(query)
        return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()


def doubles(text: str) -> Any:
    """Parse as a JavaScript tool would: every number becomes a double."""
    return json.loads(text, parse_float=float, parse_int=float)


def check(expected: Any, got: Any, name: str, where: str) -> list[str]:
    """Differences between a catalog value and its JSON value (parsed with doubles), walking lists and structs."""
    if expected is None:
        return [] if got is None else [f"{where}: {got!r} for NULL"]
    if isinstance(expected, bool):
        return [] if got is expected else [f"{where}: {got!r} for {expected!r}"]
    if isinstance(expected, Decimal):
        ok = isinstance(got, str) and got == format(expected, "f")
        return [] if ok else [f"{where}: decimal {expected} came back as {got!r}"]
    if isinstance(expected, int):
        if is_id_column(name) or abs(expected) > MAX_SAFE_INTEGER:
            ok = isinstance(got, str) and got == str(expected)
        else:
            ok = isinstance(got, float) and got == expected
        return [] if ok else [f"{where}: integer {expected} came back as {got!r}"]
    if isinstance(expected, datetime):
        ok = (
            isinstance(got, str)
            and RFC3339_UTC.fullmatch(got) is not None
            and datetime.fromisoformat(got.replace("Z", "+00:00")) == expected
        )
        return [] if ok else [f"{where}: time {expected} came back as {got!r}"]
    if isinstance(expected, date):
        return [] if got == expected.isoformat() else [f"{where}: date {expected} came back as {got!r}"]
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return [f"{where}: list {expected!r} came back as {got!r}"]
        return [
            p for i, (e, g) in enumerate(zip(expected, got, strict=True)) for p in check(e, g, name, f"{where}[{i}]")
        ]
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return [f"{where}: struct {expected!r} came back as {got!r}"]
        return [p for k, e in expected.items() for p in check(e, got[k], k, f"{where}.{k}")]
    return [] if got == expected else [f"{where}: {expected!r} came back as {got!r}"]


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_json_round_trips_every_id_decimal_and_time_of_every_view(data: Path, tmp_path: Path, fmt: str) -> None:
    con = duckdb.connect(str(data / CATALOG_FILE), read_only=True)
    views = list_views(con)
    con.close()
    problems: list[str] = []
    checked = 0
    for view in views:
        query = f'SELECT * FROM "{view}" ORDER BY ALL'
        names, rows = catalog_rows(data, query)
        text = export(data, query, fmt, tmp_path / f"{view}.{fmt}").read_text(encoding="utf-8")
        parsed = doubles(text) if fmt == "json" else [doubles(line) for line in text.splitlines()]
        assert len(parsed) == len(rows) > 0, view
        for i, (row, obj) in enumerate(zip(rows, parsed, strict=True)):
            assert list(obj) == names, view
            for name, value in zip(names, row, strict=True):
                problems += check(value, obj[name], name, f"{view}[{i}].{name}")
                checked += 1
    assert not problems, "\n".join(problems[:20])
    assert checked > 200


def test_json_ids_are_strings_even_when_small_and_nested(data: Path, tmp_path: Path) -> None:
    query = "SELECT order_list_id, orders FROM spot_order_lists"
    (obj,) = doubles(export(data, query, "json", tmp_path / "lists.json").read_text())
    assert obj["order_list_id"] == str(BIG_ID)
    assert [m["order_id"] for m in obj["orders"]] == [str(BIG_ID + 1), "1"]


def test_large_non_id_integers_become_strings_small_ones_stay_numbers(data: Path, tmp_path: Path) -> None:
    query = f"SELECT CAST({BIG_ID} AS HUGEINT) * 2 AS total, count(*) AS n FROM orders"
    (obj,) = json.loads(export(data, query, "json", tmp_path / "n.json").read_text())
    assert obj == {"total": str(BIG_ID * 2), "n": 4}


def test_csv_keeps_decimals_exact_and_times_rfc3339(data: Path, tmp_path: Path) -> None:
    query = "SELECT order_id, quote_qty, time, update_time FROM orders WHERE market = 'usdm'"
    _, [(order_id, quote, time, update)] = catalog_rows(data, query)
    (row,) = list(csv.DictReader(export(data, query, "csv", tmp_path / "o.csv").open(encoding="utf-8")))
    assert row == {
        "order_id": str(order_id),
        "quote_qty": format(quote, "f"),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "update_time": update.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }


def test_csv_writes_nested_values_as_faithful_json(data: Path, tmp_path: Path) -> None:
    (row,) = list(csv.DictReader(export(data, "SELECT orders FROM spot_order_lists", "csv", tmp_path / "l.csv").open()))
    assert [m["order_id"] for m in doubles(row["orders"])] == [str(BIG_ID + 1), "1"]


def test_parquet_keeps_native_exact_types(data: Path, tmp_path: Path) -> None:
    query = f"SELECT order_id, quote_qty, time, CAST({BIG_ID} AS HUGEINT) * 3 AS big FROM orders WHERE market = 'usdm'"
    _, [(order_id, quote, time, big)] = catalog_rows(data, query)
    table = pq.read_table(export(data, query, "parquet", tmp_path / "o.parquet"))
    assert table.to_pylist() == [{"order_id": order_id, "quote_qty": quote, "time": time, "big": Decimal(big)}]
    assert str(table.schema.field("time").type) == "timestamp[us, tz=UTC]"


def test_every_file_format_is_written_by_result_formats() -> None:
    assert set(cli.FORMATS) == {"table", *COPY_OPTIONS}

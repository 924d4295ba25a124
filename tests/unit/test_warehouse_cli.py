"""`orderlake sql` / `orderlake status` logic, the status report and the chart."""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.settings import Settings
from pipeline.warehouse import cli
from pipeline.warehouse.catalog import build_catalog
from pipeline.warehouse.chart import (
    INLINE_MARKDOWN_LIMIT,
    DayRow,
    daily_activity_report,
    load_daily_activity,
    plain_number,
    png_markdown,
    summary_markdown,
)
from pipeline.warehouse.status import coverage_report
from tests.support.exports import attempt
from tests.support.warehouse import futures_row, ms, record_assets, spot_row, write

BIG = "123456789012.12345678"  # 20 significant digits: a float would lose the tail


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    write(d, "spot_orders", "main", date(2024, 1, 1), [spot_row(1, price=BIG, qty="1", quote=BIG)])
    write(d, "spot_orders", "main", date(2024, 1, 4), [spot_row(2, time="2024-01-04T00:00:00")])
    write(d, "futures_orders", "main", date(2024, 1, 1), [futures_row(7)])
    build_catalog(d)
    return d


def sql_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_sql_arguments(parser)
    return parser.parse_args(argv)


def test_table_format_is_aligned_exact_and_counts_rows(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.run_sql(sql_args("SELECT order_id, price, time, status FROM spot_orders ORDER BY order_id"), data)
    out = capsys.readouterr().out
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split("|")[1].strip() == "price"
    assert BIG in out and "1e" not in out.lower()
    assert "2024-01-01 10:00:00Z" in out  # UTC, whatever the machine's zone
    assert lines[-1] == "(2 rows)"
    assert len({len(line) for line in lines[2:4]}) == 1  # aligned


def test_table_truncates_rows_and_wide_values(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.run_sql(sql_args("SELECT range AS n, repeat('x', 500) AS wide FROM range(250)", "--max-rows", "5"), data)
    out = capsys.readouterr().out
    assert rc == 0
    assert "(250 rows, showing the first 5" in out
    assert max(len(line) for line in out.splitlines()[:-1]) < 80 and "…" in out


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_formats_keep_decimals_exact(data: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out" / f"result.{fmt}"
    rc = cli.run_sql(
        sql_args("SELECT order_id, price FROM spot_orders ORDER BY order_id", "--format", fmt, "--output", str(out)),
        data,
    )
    assert rc == 0 and out.exists()
    if fmt == "csv":
        rows = list(csv.DictReader(out.open()))
        assert rows[0] == {"order_id": "1", "price": BIG}
    elif fmt == "json":
        rows = json.loads(out.read_text())
        assert rows[0] == {"order_id": "1", "price": BIG}  # strings: exact for any JSON reader
    else:
        table = pq.read_table(out)
        assert str(table.schema.field("price").type) == "decimal128(38, 8)"
        assert table.column("price")[0].as_py() == Decimal(BIG)
    assert not list(out.parent.glob(".orderlake-sql.*"))


def test_csv_to_stdout(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run_sql(sql_args("SELECT count(*) AS n FROM orders", "--format", "csv"), data) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "3"]


def test_missing_view_lists_available_views_without_traceback(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.run_sql(sql_args("SELECT * FROM spot_orderz"), data)
    err = capsys.readouterr().err
    assert rc == 1
    assert "spot_orderz" in err and "Available views:" in err and "daily_activity" in err
    assert "Traceback" not in err


def test_syntax_error_and_write_attempt_fail_cleanly(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run_sql(sql_args("SELEC 1"), data) == 1
    assert "syntax error" in capsys.readouterr().err.lower()
    assert cli.run_sql(sql_args("DROP VIEW orders"), data) == 1
    assert "read-only" in capsys.readouterr().err.lower()
    assert cli.run_sql(sql_args("SELECT 1", "--format", "parquet"), data) == 1
    assert "--output" in capsys.readouterr().err


def test_missing_catalog_says_how_to_build_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run_sql(sql_args("SELECT 1"), tmp_path / "nothing") == 1
    err = capsys.readouterr().err
    assert "make run" in err and "orderlake backfill" in err


def test_wired_into_orderlake_cli(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from assets.cli import main

    assert main(["sql", "SELECT count(*) AS n FROM spot_orders", "--format", "csv"], Settings(data_dir=data)) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "2"]


# -- status ---------------------------------------------------------------------------------------------------
def _symbol_index(data: Path) -> None:
    doc = {
        "version": 1,
        "accounts": {
            "main": {
                "full_probe_completed_at": ms("2024-01-05T00:00:00"),
                "symbols": {
                    "BTCUSDT": {
                        "symbol": "BTCUSDT",
                        "status": "listed",
                        "evidence": ["probe"],
                        "order_count": 2,
                        "count_exact": True,
                        "first_order_time": ms("2024-01-01T10:00:00"),
                        "last_order_time": ms("2024-01-04T00:00:00"),
                    },
                    "OLDCOIN": {
                        "symbol": "OLDCOIN",
                        "status": "delisted",
                        "evidence": ["balance"],
                        "blind_spot": "bad_symbol: -1121; history unreachable through allOrders",
                    },
                    "NOORDERS": {"symbol": "NOORDERS", "status": "listed", "evidence": ["probe"], "order_count": 0},
                },
                "blind_spots": [{"kind": "archived", "detail": "-2026 for order 42", "symbol": "ETHUSDT"}],
            }
        },
    }
    (data / "state").mkdir(parents=True, exist_ok=True)
    (data / "state" / "spot_symbols.json").write_text(json.dumps(doc))


def test_status_report_gaps_symbols_blind_spots(data: Path) -> None:
    _symbol_index(data)
    now = datetime(2024, 6, 1, tzinfo=UTC)
    report = coverage_report(data, "main", start_date=date(2023, 12, 30), spot_symbols=("BTCUSDT",), now=now)
    spot = next(t for t in report.tables if t.table == "spot_orders")
    assert spot.partitions == 2 and spot.rows == 2
    assert spot.gaps == [(date(2024, 1, 2), date(2024, 1, 3))]
    assert spot.before_start == [(date(2023, 12, 30), date(2023, 12, 31))]
    text = report.render()
    assert "spot_orders [main]: 2 partitions" in text
    assert "2 missing days: 2024-01-02..2024-01-03" in text
    assert "OLDCOIN (NOT in ORDERLAKE_SPOT_SYMBOLS)" in text and "-1121" in text
    assert "-2026 for order 42" in text
    assert "before 2024-03-03" in text  # 90 days before "now": archived zero-fill cancels
    assert "BTCUSDT" in text and "NOORDERS" not in text.split("KNOWN BLIND SPOTS")[0].split("SPOT SYMBOLS")[1]
    assert "no export ledger" in text


def test_status_with_export_ledger(data: Path) -> None:
    import pipeline.exports.ledger as ledger_mod

    ledger = ledger_mod.ExportLedger(data)
    now_ms = ms("2024-06-01T00:00:00")
    entry = attempt(ledger, start_ms=ms("2024-01-01T00:00:00"), end_ms=ms("2024-03-31T23:59:59") + 999, now_ms=now_ms)
    ledger.record_created(entry.id, download_id="777", avg_cost_ms=None, now_ms=now_ms, next_poll_at=now_ms)
    report = coverage_report(data, "main", start_date=date(2024, 1, 1), now=datetime(2024, 6, 1, 12, tzinfo=UTC))
    text = report.render()
    assert "downloadId=777" in text
    assert "1 used, 9 of 10 left" in text
    assert "usdm: requested, not ingested yet: 2024-01-01..2024-03-31" in text
    assert "usdm: days with no export ingested or in flight since the start date: 2024-04-01..2024-05-31" in text
    assert "pm_um: days with no export ingested or in flight since the start date: 2024-01-01..2024-05-31" in text


def test_status_survives_missing_and_broken_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d"
    assert cli.run_status(argparse.Namespace(account=None), Settings(data_dir=data)) == 0
    assert "no partitions yet" in capsys.readouterr().out
    (data / "state").mkdir(parents=True)
    (data / "state" / "spot_symbols.json").write_text("{not json")
    text = coverage_report(data, "main").render()
    assert "unreadable" in text


# -- chart ----------------------------------------------------------------------------------------------------
def test_chart_png_and_markdown(data: Path) -> None:
    report = daily_activity_report(data)
    path = report.path
    assert path == data / "reports" / "daily_activity.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = png_markdown(path)
    assert md.startswith("![daily activity](data:image/png;base64,")
    assert base64.b64decode(md.split(",", 1)[1].rstrip(")")) == path.read_bytes()
    assert report.chart_markdown.split(",", 1)[1] == md.split(",", 1)[1]
    assert not list(path.parent.glob(".*tmp"))


def test_chart_on_empty_lake(tmp_path: Path) -> None:
    report = daily_activity_report(tmp_path / "empty")
    assert report.path.exists() and report.path.stat().st_size > 1000
    assert io.BytesIO(report.path.read_bytes()).read(4) == b"\x89PNG"
    assert report.summary_markdown == "No orders in the lake yet."


def test_chart_rows_and_panels_are_per_quote_asset(tmp_path: Path) -> None:
    d = tmp_path / "data"
    day = date(2024, 1, 1)
    at = "2024-01-01T10:00:00"
    record_assets(d, {"BTCUSDT": ("BTC", "USDT"), "ETHBTC": ("ETH", "BTC")})
    write(
        d,
        "spot_orders",
        "main",
        day,
        [
            spot_row(1, time=at),
            spot_row(2, symbol="ETHBTC", price="0.05", qty="2", time=at),
            spot_row(3, symbol="GONEUSDT", time=at),
        ],
    )
    build_catalog(d)
    rows = load_daily_activity(d)
    assert {(r.quote_asset, r.notional) for r in rows} == {
        ("USDT", Decimal(100)),
        ("BTC", Decimal("0.1")),
        (None, Decimal(100)),
    }
    report = daily_activity_report(d)
    assert "| BTC | 1 | 0.1 |" in report.summary_markdown and "| USDT | 1 | 100 |" in report.summary_markdown
    assert "| unknown | 1 | not summed |" in report.summary_markdown
    assert len(report.summary_markdown) < INLINE_MARKDOWN_LIMIT


def test_summary_stays_inline_sized_with_many_assets() -> None:
    rows = [DayRow(date(2024, 1, 1), "spot", f"ASSET{i:03d}", 10**6, Decimal("123456789.12345678")) for i in range(200)]
    text = summary_markdown(rows)
    assert len(text) < INLINE_MARKDOWN_LIMIT and text.endswith("| … | | |")


def test_log_axis_ticks_read_as_numbers() -> None:
    assert [plain_number(v) for v in (0.01, 5, 1000, 20000, 3e6)] == ["0.01", "5", "1k", "20k", "3M"]

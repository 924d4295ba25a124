"""``orderlake sql`` and ``orderlake status``.

``sql`` opens the catalog READ-ONLY (many read-only processes may share the file; the catalog builder never opens the
live file read-write, it swaps in a new one), so it can run at any time, also during a backfill. Heavy imports are
lazy: ``orderlake`` (``assets.cli``) imports this module just to build its parser.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from pipeline.settings import Settings

from pipeline.storage.atomic import atomic_path, atomic_write
from pipeline.storage.lakefs import connect_catalog

FORMATS = ("table", "csv", "json", "ndjson", "parquet")  # all but table are written by result_formats.copy_result
NO_CATALOG_HELP = (
    "run the pipeline first: `make run` (sandbox demo) or `orderlake backfill --start YYYY-MM-DD "
    "--end YYYY-MM-DD`; the catalog is (re)built after every materialization"
)


# -- arguments --------------------------------------------------------------------------------------------------------
def add_sql_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run SQL against the DuckDB catalog ($ORDERLAKE_DATA_DIR/warehouse.duckdb, opened "
        "read-only). Views: spot_orders, spot_order_versions, spot_order_lists, spot_open_orders, "
        "futures_orders, pm_um_orders, orders, daily_activity, lake_files, coverage."
    )
    parser.add_argument("query", help='SQL, e.g. "SELECT * FROM daily_activity ORDER BY day DESC LIMIT 20"')
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default, aligned text), csv, json (array of objects), ndjson (one object per line) or parquet; "
        "json/ndjson write ids and decimals as strings and times as RFC 3339 UTC (see the README)",
    )
    parser.add_argument("--output", "-o", type=Path, help="write to FILE instead of stdout (required for parquet)")
    parser.add_argument("--max-rows", type=int, default=100, help="table format: rows shown (default 100)")
    parser.add_argument("--max-width", type=int, default=40, help="table format: widest column (default 40)")


def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Coverage report: partitions and gaps per table and account, the export ledger and "
        "quota, spot symbol coverage and the known blind spots. Reads local files only."
    )
    parser.add_argument("--account", help="only this account (default: every account found)")


def add_schema_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print the schema reference: every lake table and catalog view with each column's type, asset or unit, "
        "nullability, Binance source field and meaning (the repository keeps it as docs/schema.md)."
    )
    parser.add_argument("--output", "-o", type=Path, help="write to FILE (e.g. docs/schema.md) instead of stdout")


def _err(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


# -- sql --------------------------------------------------------------------------------------------------------------
def run_sql(args: argparse.Namespace, data_dir: Path) -> int:
    from pipeline.warehouse.catalog import CATALOG_FILE

    path = data_dir / CATALOG_FILE
    if not path.exists():
        return _err(f"no catalog at {path}: {NO_CATALOG_HELP}")
    if args.format == "parquet" and args.output is None:
        return _err("--format parquet needs --output FILE")
    query = args.query.strip().rstrip(";").strip()
    if not query:
        return _err("empty query")
    try:
        con = _connect(path)
    except Exception as exc:
        return _err(_open_problem(path, exc))
    try:
        if args.format == "table":
            return _run_table(con, query, args)
        return _run_copy(con, query, args.format, args.output)
    except Exception as exc:
        if not _is_duckdb_error(exc):
            raise
        return _err(explain_error(con, exc))
    finally:
        con.close()


def _connect(path: Path) -> Any:

    con = connect_catalog(path)  # a lake on S3: its credentials are given to this connection only
    con.execute("SET TimeZone = 'UTC'")  # timestamps print in UTC whatever the machine's zone
    return con


def _is_duckdb_error(exc: BaseException) -> bool:
    import duckdb

    return isinstance(exc, duckdb.Error)


def _open_problem(path: Path, exc: Exception) -> str:
    text = str(exc)
    if "lock" in text.lower():
        return (
            f"cannot open {path} read-only: another process holds it read-write ({text.splitlines()[0]}). "
            "Close that session (e.g. a DuckDB CLI started without -readonly) and retry."
        )
    return f"cannot open {path}: {text.splitlines()[0] if text else type(exc).__name__}"


def explain_error(con: Any, exc: BaseException) -> str:
    """DuckDB's message, plus the available views when a table/view name was wrong."""
    message = str(exc).strip() or type(exc).__name__  # DuckDB's text names the problem ("Catalog Error: ...")
    if "does not exist" in message:
        try:
            from pipeline.warehouse.catalog import list_views

            message += f"\nAvailable views: {', '.join(list_views(con))}"
        except Exception:  # the connection itself failed: the original message is enough
            pass
    return message


def _run_table(con: Any, query: str, args: argparse.Namespace) -> int:
    con.execute(query)
    if con.description is None:
        print("OK")
        return 0
    names = [d[0] for d in con.description]
    types = [str(d[1]) for d in con.description]
    rows = con.fetchmany(max(args.max_rows, 0))
    total = len(rows)
    while True:
        more = con.fetchmany(10_000)
        if not more:
            break
        total += len(more)
    text = render_table(names, types, rows, total=total, max_width=args.max_width)
    if args.output is not None:
        atomic_write(args.output, text)
        print(f"wrote {min(len(rows), total)} of {total} rows to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _run_copy(con: Any, query: str, fmt: str, output: Path | None) -> int:
    """csv/json/ndjson/parquet through DuckDB COPY (:mod:`pipeline.warehouse.result_formats`), streamed to disk."""
    from pipeline.warehouse.result_formats import copy_result

    if output is not None:
        with atomic_path(output, prefix=".orderlake-sql.", suffix=f".{fmt}.tmp") as tmp:
            copy_result(con, query, fmt, tmp)
        print(f"wrote {output} ({fmt})", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory(prefix="orderlake-sql.") as scratch:
        tmp = Path(scratch) / f"result.{fmt}"
        copy_result(con, query, fmt, tmp)
        with tmp.open("r", encoding="utf-8") as fh:
            shutil.copyfileobj(fh, sys.stdout)
    return 0


# -- table rendering --------------------------------------------------------------------------------------------------
def format_value(value: Any) -> str:
    """Exact and readable: decimals in plain notation with their full scale (never via float)."""
    if value is None:
        return "NULL"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        text = value.isoformat(sep=" ")
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return "\\x" + value.hex()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=format_value, ensure_ascii=False)
    return str(value)


_NUMERIC_PREFIXES = (
    "DECIMAL",
    "BIGINT",
    "INTEGER",
    "SMALLINT",
    "TINYINT",
    "HUGEINT",
    "UBIGINT",
    "UINTEGER",
    "USMALLINT",
    "UTINYINT",
    "UHUGEINT",
    "DOUBLE",
    "FLOAT",
    "REAL",
)


def _clip(text: str, width: int) -> str:
    text = text.replace("\n", "\\n").replace("\t", " ")
    return text if len(text) <= width else text[: max(width - 1, 1)] + "…"


def render_table(
    names: Sequence[str],
    types: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    total: int | None = None,
    max_width: int = 40,
) -> str:
    """An aligned text table (numbers right-aligned), a row count line, and a note when rows were cut."""
    total = len(rows) if total is None else total
    max_width = max(max_width, 4)
    cells = [[_clip(format_value(v), max_width) for v in row] for row in rows]
    heads = [_clip(n, max_width) for n in names]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(heads)]
    numeric = [t.upper().startswith(_NUMERIC_PREFIXES) for t in types]

    def line(values: Sequence[str]) -> str:
        return " | ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(heads), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    noun = "row" if total == 1 else "rows"
    if total > len(rows):
        out.append(
            f"({total} {noun}, showing the first {len(rows)}; use --max-rows N or --format csv --output FILE for all)"
        )
    else:
        out.append(f"({total} {noun})")
    return "\n".join(out) + "\n"


# -- schema -----------------------------------------------------------------------------------------------------------
def run_schema(args: argparse.Namespace) -> int:
    from pipeline.warehouse.schema_doc import render

    text = render()
    if args.output is None:
        sys.stdout.write(text)
    else:
        atomic_write(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


# -- status -----------------------------------------------------------------------------------------------------------
def run_status(args: argparse.Namespace, settings: Settings, out: TextIO | None = None) -> int:
    from pipeline.warehouse.status import coverage_report

    account = getattr(args, "account", None)
    report = coverage_report(
        settings.data_dir,
        account,
        start_date=settings.start_date,
        spot_symbols=settings.spot_symbols,
        export_monthly_limit=settings.export_monthly_limit,
        export_monthly_limits={
            "trade": settings.export_trade_monthly_limit,
            "income": settings.export_income_monthly_limit,
        },
    )
    (out or sys.stdout).write(report.render())
    from pipeline.futures.status import futures_status_text

    (out or sys.stdout).write(futures_status_text(settings, account))
    return 0

"""What Superset's "add dataset" does, with what the `bi` extra installs: an engine from the README's SQLAlchemy URI
opened read-only, SQLAlchemy's inspector listing every view with its columns and their types, then a query on each.

Reflection broke for duckdb-engine users when SQLAlchemy 2.0.45 started reading ``pg_catalog.pg_collation``
(duckdb-engine issues #1379, #1391) and again with SQLAlchemy 2.1; this test fails if the installed dialect breaks it
again, whatever the versions pip resolved.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa

from pipeline.warehouse.catalog import build_catalog, list_views
from tests.support.warehouse import BIG_ID, BIG_PRICE, BIG_QTY, write_every_table

README = Path(__file__).resolve().parents[2] / "README.md"
README_DATA_DIR = "/abs/path/data"  # the README's placeholder for the absolute data dir


def readme_uri(data_dir: Path) -> str:
    """The SQLAlchemy URI the README gives BI users, pointed at ``data_dir``."""
    found = re.findall(r"`(duckdb:///[^`]*/warehouse\.duckdb)`", README.read_text(encoding="utf-8"))
    assert found, "README must give the SQLAlchemy URI of the catalog (duckdb:////abs/path/data/warehouse.duckdb)"
    assert len(set(found)) == 1, f"README gives several catalog URIs: {sorted(set(found))}"
    assert README_DATA_DIR in found[0], found[0]
    return found[0].replace(README_DATA_DIR, data_dir.resolve().as_posix())


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = write_every_table(tmp_path_factory.mktemp("bi") / "data")
    build_catalog(data)
    return data


def duckdb_columns(data_dir: Path) -> dict[str, list[tuple[str, str]]]:
    """Each view's (column, DuckDB type), as DuckDB itself describes the catalog."""
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        views = list_views(con)
        rows = con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE NOT internal AND table_name IN (SELECT unnest(?)) ORDER BY table_name, column_index",
            [views],
        ).fetchall()
    finally:
        con.close()
    out: dict[str, list[tuple[str, str]]] = {v: [] for v in views}
    for view, column, dtype in rows:
        out[view].append((column, dtype))
    return out


def expect_type(reflected: sa.types.TypeEngine, duck: str) -> str | None:
    """None when SQLAlchemy's reflected type is the DuckDB type; else what is wrong."""
    simple = {
        "VARCHAR": sa.String,
        "BIGINT": sa.BigInteger,
        "INTEGER": sa.Integer,
        "BOOLEAN": sa.Boolean,
        "DATE": sa.Date,
    }
    if isinstance(reflected, sa.types.NullType):
        return "reflected as NullType (a BI tool cannot use it)"
    if duck in simple:
        return None if isinstance(reflected, simple[duck]) else f"expected {simple[duck].__name__}"
    if duck == "TIMESTAMP WITH TIME ZONE":
        ok = isinstance(reflected, sa.DateTime) and reflected.timezone
        return None if ok else "expected a DateTime with timezone=True"
    if m := re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", duck):
        ok = isinstance(reflected, sa.Numeric) and (reflected.precision, reflected.scale) == tuple(map(int, m.groups()))
        return None if ok else f"expected Numeric{m.groups()}"
    if duck.endswith("[]"):
        return None if isinstance(reflected, sa.ARRAY) else "expected an ARRAY"
    return f"DuckDB type {duck} has no expectation here: add one (and check a BI tool can read it)"


def test_inspector_reflects_every_view_and_each_answers_a_query(catalog: Path) -> None:
    expected = duckdb_columns(catalog)  # first: one process cannot open the file with two configurations at once
    engine = sa.create_engine(readme_uri(catalog), connect_args={"read_only": True})
    try:
        inspector = sa.inspect(engine)
        assert sorted(inspector.get_view_names()) == sorted(expected)
        problems = []
        for view, columns in expected.items():
            reflected = inspector.get_columns(view)
            assert [c["name"] for c in reflected] == [name for name, _ in columns], view
            for col, (name, duck) in zip(reflected, columns, strict=True):
                if (wrong := expect_type(col["type"], duck)) is not None:
                    problems.append(f"{view}.{name} ({duck}, reflected {col['type']!r}): {wrong}")
            assert inspector.get_table_comment(view)["text"], f"{view} has no description for the BI tool"
        assert not problems, "\n".join(problems)
        with engine.connect() as conn:
            for view in expected:
                table = sa.Table(view, sa.MetaData(), autoload_with=engine)
                rows = conn.execute(sa.select(table).limit(1)).fetchall()
                raw = conn.execute(sa.text(f'SELECT * FROM "{view}" LIMIT 1')).fetchall()
                assert len(rows) == len(raw) == 1, view
                assert len(rows[0]) == len(raw[0]) == len(expected[view]), view
    finally:
        engine.dispose()


def _session_time_zone(engine: sa.Engine, zone: str) -> None:
    """What the README tells BI users who want UTC on screen: set the session's TimeZone on every new connection."""

    @sa.event.listens_for(engine, "connect")
    def _set(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET TimeZone = '{zone}'")
        cursor.close()


@pytest.mark.parametrize("zone", [None, "UTC", "Asia/Kathmandu"])
def test_values_come_back_exact(catalog: Path, zone: str | None) -> None:
    """Through SQL text and through the reflected table (typed columns): decimals as exact Decimal (a dialect that
    converts through float loses digits here), ids beyond 2^53 intact, times aware and the same instant whatever
    the session's time zone (None: the machine's, which DuckDB takes by default); shown in UTC once set to UTC."""
    engine = sa.create_engine(readme_uri(catalog), connect_args={"read_only": True})
    if zone is not None:
        _session_time_zone(engine, zone)
    try:
        orders = sa.Table("orders", sa.MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            text_row = conn.execute(
                sa.text("SELECT order_id, price, quote_qty, time FROM orders WHERE market = 'usdm'")
            ).one()
            typed_row = conn.execute(
                sa.select(orders.c.order_id, orders.c.price, orders.c.quote_qty, orders.c.time).where(
                    orders.c.market == "usdm"
                )
            ).one()
            session_zone = conn.execute(sa.text("SELECT current_setting('TimeZone')")).scalar_one()
    finally:
        engine.dispose()
    assert zone is None or session_zone == zone
    quote = Decimal(BIG_PRICE) * Decimal(BIG_QTY)
    assert float(quote) != quote  # the check below would pass through a double otherwise
    placed = datetime(2024, 1, 1, 10, tzinfo=UTC)  # tests/support/warehouse.py's default order time
    for row in (text_row, typed_row):
        assert row.order_id == BIG_ID
        assert isinstance(row.price, Decimal) and row.price == Decimal(BIG_PRICE)
        assert isinstance(row.quote_qty, Decimal) and row.quote_qty == quote
        assert isinstance(row.time, datetime) and row.time.tzinfo is not None and row.time == placed
        if zone == "UTC":
            assert row.time.utcoffset().total_seconds() == 0
        elif zone is not None:  # Kathmandu is UTC+5:45: a session zone that is not UTC shifts only the display
            assert row.time.utcoffset().total_seconds() == (5 * 60 + 45) * 60

"""Amounts never mix assets: every amount column of a view has its asset beside it, the assets come from exchangeInfo
(NULL when unknown, never guessed), and no view or canned query aggregates an amount across assets."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from assets.cli.demo import EXAMPLE_QUERIES
from pipeline.errors import TransientError
from pipeline.warehouse.catalog import CATALOG_FILE, build_catalog, list_views
from pipeline.warehouse.chart import DAILY_QUERY
from pipeline.warehouse.symbols import load_known_assets, record_futures_exchange_info, refresh_futures_symbols
from pipeline.warehouse.views import SPECS, VIEWS, asset_of, column_doc
from tests.support.asset_grouping import Checker, Columns, aggregate_functions
from tests.support.warehouse import futures_row, record_assets, spot_row, write, write_every_table

DAY = date(2024, 1, 1)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = write_every_table(tmp_path_factory.mktemp("amounts") / "data", DAY)
    # a delisted pair no exchangeInfo listed while we looked, and a second BTC-quoted fill on the same day
    write(data, "spot_orders", "main", date(2024, 1, 2), [spot_row(7, symbol="LUNAUSDT", time="2024-01-02T01:00:00")])
    write(
        data,
        "spot_orders",
        "main",
        date(2024, 1, 3),
        [spot_row(8, symbol="BNBBTC", price="0.01", qty="3", time="2024-01-03T02:00:00")],
    )
    record_assets(data, {"BNBBTC": ("BNB", "BTC")})
    build_catalog(data)
    return data


def query(data: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(data / CATALOG_FILE), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def view_columns(data: Path) -> dict[str, list[tuple[str, str]]]:
    con = duckdb.connect(str(data / CATALOG_FILE), read_only=True)
    try:
        return {v: [(r[0], r[1]) for r in con.execute(f'DESCRIBE "{v}"').fetchall()] for v in list_views(con)}
    finally:
        con.close()


# -- the registry -----------------------------------------------------------------------------------------------
def test_every_view_is_registered_and_every_column_documented(data: Path) -> None:
    columns = view_columns(data)
    assert list(columns) == sorted(SPECS) and [v.name for v in VIEWS] == list(SPECS)
    problems = []
    for view, cols in columns.items():
        for name, dtype in cols:
            try:
                doc = column_doc(view, name)
            except KeyError as exc:
                problems.append(f"{view}.{name}: undocumented ({exc})")
                continue
            if not doc.meaning or doc.nullable is None:
                problems.append(f"{view}.{name}: no meaning or nullability")
            if dtype.startswith("DECIMAL") and not (doc.asset or doc.unit):
                problems.append(f"{view}.{name}: a {dtype} with neither an asset nor a unit")
    assert not problems, "\n".join(problems)


def test_every_amount_has_its_asset_column_beside_it(data: Path) -> None:
    missing = [
        f"{view}.{name} is in {asset_of(view, name)}, which {view} lacks"
        for view, cols in view_columns(data).items()
        for name, _ in cols
        if asset_of(view, name) and asset_of(view, name) not in {n for n, _ in cols}
    ]
    assert not missing, missing
    assert asset_of("orders", "quote_qty") == "quote_asset" and asset_of("orders", "executed_qty") == "base_asset"
    assert asset_of("daily_activity", "filled_notional") == "quote_asset"


def test_columns_documented_as_not_null_have_no_nulls(data: Path) -> None:
    problems = []
    for view, cols in view_columns(data).items():
        for name, _ in cols:
            if column_doc(view, name).nullable is False:
                (nulls,) = query(data, f'SELECT count(*) FROM "{view}" WHERE "{name}" IS NULL')[0]
                if nulls:
                    problems.append(f"{view}.{name}: {nulls} NULLs")
    assert not problems, problems


# -- the assets -------------------------------------------------------------------------------------------------
def test_assets_come_from_exchange_info_and_unknown_stays_null(data: Path) -> None:
    assets = dict(
        ((m, s), (b, qa)) for m, s, b, qa in query(data, "SELECT market, symbol, base_asset, quote_asset FROM symbols")
    )
    assert assets == {
        ("spot", "BTCUSDT"): ("BTC", "USDT"),
        ("spot", "ETHBTC"): ("ETH", "BTC"),
        ("spot", "BNBBTC"): ("BNB", "BTC"),
        ("spot", "LUNAUSDT"): (None, None),  # not guessed from the name
        ("usdm", "BTCUSDT"): ("BTC", "USDT"),
        ("pm_um", "BTCUSDT"): ("BTC", "USDT"),
    }
    rows = query(data, "SELECT market, symbol, base_asset, quote_asset FROM orders ORDER BY ALL")
    assert all(assets[(m, s)] == (b, qa) for m, s, b, qa in rows)
    assert query(data, "SELECT DISTINCT quote_asset FROM spot_open_orders") == [("USDT",)]
    assert query(data, "SELECT margin_asset FROM symbols WHERE market = 'usdm'") == [("USDT",)]


def test_daily_activity_is_per_quote_asset(data: Path) -> None:
    rows = query(
        data,
        "SELECT quote_asset, sum(filled_notional) FROM daily_activity WHERE market = 'spot' "
        "GROUP BY quote_asset ORDER BY quote_asset NULLS LAST",
    )
    # BTC: ETHBTC 0.05 * 2 + BNBBTC 0.01 * 3; USDT: BTCUSDT 100; unknown: LUNAUSDT 100, kept apart
    assert rows == [("BTC", Decimal("0.13")), ("USDT", Decimal("100")), (None, Decimal("100"))]


def test_build_reports_symbols_without_assets(data: Path, tmp_path: Path) -> None:
    built = build_catalog(data)
    assert built.unknown_assets == (("spot", "LUNAUSDT"),)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "spot_symbols.json").write_text("{not json")
    write(tmp_path, "spot_orders", "main", DAY, [spot_row(1)])
    broken = build_catalog(tmp_path)
    assert broken.unknown_assets == (("spot", "BTCUSDT"),)
    assert "spot_symbols.json unreadable" in broken.asset_problems[0]


# -- the futures symbol file ------------------------------------------------------------------------------------
def test_futures_exchange_info_is_merged_never_shrunk(tmp_path: Path) -> None:
    info = {"symbols": [{"symbol": "BTCUSDT", "baseAsset": "BTC", "quoteAsset": "USDT", "marginAsset": "USDT"}]}
    assert record_futures_exchange_info(tmp_path, info, 1) == 1
    later = {"symbols": [{"symbol": "ETHUSDC", "baseAsset": "ETH", "quoteAsset": "USDC", "marginAsset": "USDC"}]}
    assert record_futures_exchange_info(tmp_path, later, 2) == 1
    known = load_known_assets(tmp_path)
    assert known.get("usdm", "BTCUSDT").quote_asset == "USDT"  # delisted since: still known
    assert known.get("pm_um", "ETHUSDC").margin_asset == "USDC"
    doc = json.loads((tmp_path / "state" / "futures_symbols.json").read_text())
    assert set(doc["symbols"]) == {"BTCUSDT", "ETHUSDC"}


def test_refresh_calls_exchange_info_only_for_unknown_symbols(tmp_path: Path) -> None:
    calls = []

    def exchange_info() -> dict:
        calls.append(1)
        return {"symbols": [{"symbol": "BTCUSDT", "baseAsset": "BTC", "quoteAsset": "USDT", "marginAsset": "USDT"}]}

    first = refresh_futures_symbols(tmp_path, ["BTCUSDT", "GONEUSDT"], exchange_info, 1)
    assert (first.recorded, first.still_unknown, first.problem, len(calls)) == (1, ("GONEUSDT",), None, 1)
    again = refresh_futures_symbols(tmp_path, ["BTCUSDT"], exchange_info, 2)
    assert again.recorded == 0 and len(calls) == 1  # known: no call


def test_refresh_failure_is_reported_not_raised(tmp_path: Path) -> None:
    def down() -> dict:
        raise TransientError("connection refused")

    outcome = refresh_futures_symbols(tmp_path, ["BTCUSDT"], down, 1)
    assert outcome.still_unknown == ("BTCUSDT",) and "connection refused" in (outcome.problem or "")


# -- no aggregate over an amount across assets ------------------------------------------------------------------
@pytest.fixture(scope="module")
def checker(data: Path) -> Checker:
    columns = view_columns(data)

    def relation(name: str) -> Columns | None:
        if name not in columns:
            return None
        return {c: frozenset({a}) if (a := asset_of(name, c)) else frozenset() for c, _ in columns[name]}

    return Checker(relation, aggregate_functions(duckdb.connect()))


def test_no_view_aggregates_an_amount_across_assets(data: Path, checker: Checker) -> None:
    definitions = query(data, "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY view_name")
    problems = []
    for name, sql in definitions:
        select = sql[sql.index(" AS ") + 4 :].rstrip().rstrip(";")
        problems += checker.check(select, name)
    assert not problems, "\n".join(problems)
    assert len(definitions) == len(VIEWS)


def test_the_chart_and_the_example_queries_keep_assets_apart(checker: Checker) -> None:
    problems = checker.check(DAILY_QUERY, "chart")
    for title, sql in EXAMPLE_QUERIES:
        problems += checker.check(sql, title)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT day, sum(filled_notional) FROM daily_activity GROUP BY day",
        "SELECT market, sum(quote_qty) FROM orders GROUP BY ALL",
        "SELECT sum(executed_qty) FROM orders WHERE quote_asset = 'USDT'",  # the base asset still varies
        "SELECT quote_asset, max(n) FROM (SELECT quote_asset, quote_qty * 2 AS n FROM orders) GROUP BY symbol",
        "WITH x AS (SELECT symbol, price FROM orders) SELECT symbol, avg(price) FROM x GROUP BY symbol",
        "SELECT o.quote_asset, sum(o.price * s.executed_qty) FROM orders o JOIN spot_orders s USING (order_id) "
        "GROUP BY 1",
        "SELECT sum(quote_qty) OVER (PARTITION BY market) FROM orders",
        "SELECT symbol FROM orders QUALIFY row_number() OVER (ORDER BY quote_qty DESC) <= 3",
        "SELECT * FROM orders WHERE price > (SELECT avg(price) FROM orders)",
        "SELECT sum(notional) FROM unknown_view",
    ],
)
def test_the_check_catches_aggregates_across_assets(checker: Checker, sql: str) -> None:
    assert checker.check(sql, "probe")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT quote_asset, sum(filled_notional) FROM daily_activity GROUP BY quote_asset",
        "SELECT sum(quote_qty) FROM orders WHERE quote_asset = 'USDT' AND market = 'spot'",
        "SELECT base_asset, quote_asset, sum(price * executed_qty) FROM orders GROUP BY ALL",
        "SELECT count(quote_qty), count(*) FROM orders",
        "SELECT symbol FROM orders QUALIFY row_number() OVER (PARTITION BY quote_asset ORDER BY quote_qty) = 1",
        "WITH x AS (SELECT quote_asset, quote_qty AS n FROM orders) SELECT quote_asset, sum(n) FROM x GROUP BY 1",
    ],
)
def test_the_check_accepts_aggregates_per_asset(checker: Checker, sql: str) -> None:
    assert checker.check(sql, "probe") == []


def test_futures_rows_carry_their_symbol_assets(tmp_path: Path) -> None:
    write(tmp_path, "futures_orders", "main", DAY, [futures_row(5, symbol="ETHUSDC")])
    record_assets(tmp_path, futures={"ETHUSDC": ("ETH", "USDC", "USDC")})
    build_catalog(tmp_path)
    got = query(tmp_path, "SELECT symbol, base_asset, quote_asset FROM futures_order_versions")
    assert got == [("ETHUSDC", "ETH", "USDC")]

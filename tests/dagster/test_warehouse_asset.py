"""The ``warehouse`` asset against the sandbox: it learns futures symbols' assets from exchangeInfo only when the lake
has a symbol it does not know, and puts the chart and a short summary in its metadata."""

from datetime import date

import dagster as dg

from assets.definitions import build_definitions
from pipeline.sandbox.testing import start_sandbox
from pipeline.storage.lakefs import connect_catalog
from pipeline.warehouse.chart import INLINE_MARKDOWN_LIMIT
from tests.support.assets import sandbox_settings
from tests.support.warehouse import futures_row, write

EXCHANGE_INFO = "/fapi/v1/exchangeInfo"
DAY = date(2024, 1, 1)


def _materialize(settings, instance) -> dict:
    result = build_definitions(settings).resolve_job_def("warehouse_build").execute_in_process(instance=instance)
    assert result.success
    (event,) = result.get_asset_materialization_events()
    return event.step_materialization_data.materialization.metadata


def test_warehouse_learns_futures_assets_once_and_shows_its_chart(tmp_path, monkeypatch) -> None:
    data = tmp_path / "data"
    at = f"{DAY.isoformat()}T10:00:00"
    write(data, "futures_orders", "main", DAY, [futures_row(1, symbol="ETHUSDT", time=at)])
    write(data, "pm_um_orders", "main", DAY, [futures_row(2, symbol="1000PEPEUSDT", market="pm_um", time=at)])
    instance = dg.DagsterInstance.ephemeral()
    with start_sandbox(listed_symbols=20, active_symbols=2, history_days=5) as sx:
        settings = sandbox_settings(monkeypatch, sx, data)
        metadata = _materialize(settings, instance)
        calls = sx.stats()["by_endpoint"].get(EXCHANGE_INFO, 0)
        assert calls >= 1
        with connect_catalog(data / "warehouse.duckdb") as con:
            assets = con.execute("SELECT market, symbol, base_asset, quote_asset FROM orders ORDER BY 1").fetchall()
        assert assets == [("pm_um", "1000PEPEUSDT", "1000PEPE", "USDT"), ("usdm", "ETHUSDT", "ETH", "USDT")]
        assert metadata["symbols_without_assets"].value == "none"
        again = _materialize(settings, instance)
        assert sx.stats()["by_endpoint"].get(EXCHANGE_INFO, 0) == calls  # known now: no call
    chart = metadata["daily_activity_chart"].value
    assert chart.startswith("![") and "data:image/png;base64," in chart
    summary = again["last_7_days"].value
    assert len(summary) < INLINE_MARKDOWN_LIMIT and "| USDT | 2 |" in summary
    assert again["chart_path"].value == str(data.resolve() / "reports" / "daily_activity.png")
    assert list(metadata)[:3] == ["daily_activity_chart", "last_7_days", "chart_path"]

"""The Dagster code location: it loads, every job resolves, the schedules target the right partitions, and no
secret reaches Dagster's storage, the logs, the lake or the state files."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from assets import definitions
from assets.cli import main
from assets.definitions import build_definitions
from assets.exports import definitions as exports
from assets.spot import definitions as spot
from assets.warehouse import definitions as warehouse
from pipeline.errors import ConfigurationError
from pipeline.sandbox.testing import start_sandbox
from pipeline.settings import Secret, Settings
from tests.support.assets import sandbox_settings
from tests.support.lake_files import lake_paths, stored_bytes
from tests.support.scaled_dagster import database_text

JOBS = (
    "daily",
    "futures_orders_rest_backfill",
    "spot_daily",
    "spot_backfill",
    "spot_trades_backfill",
    "export_requests",
    "warehouse_build",
    "futures_order_export_retrieval",
    "pm_um_order_export_retrieval",
)


def test_definitions_load_and_every_job_resolves() -> None:
    defs = build_definitions(Settings(api_key=Secret("k"), api_secret=Secret("s")))
    dg.Definitions.validate_loadable(defs)
    for job in JOBS:
        assert defs.resolve_job_def(job).name == job
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {
        "spot_symbol_index",
        "spot_orders",
        "spot_order_lists",
        "spot_open_orders",
        "spot_trades",
        "warehouse",
        "futures_order_exports",
        "futures_order_export_links",
        "futures_order_export_files",
        "futures_orders",
        "pm_um_order_exports",
        "pm_um_order_export_links",
        "pm_um_order_export_files",
        "pm_um_orders",
    } <= keys
    assert {s.name for s in defs.sensors} == {"export_link_sensor", "warehouse_automation", "stale_run_recovery"}


def test_secrets_are_env_var_references_not_values() -> None:
    settings = Settings(api_key=Secret("the-key-value"), api_secret=Secret("the-secret-value"))
    binance = build_definitions(settings).resources["binance"]
    assert isinstance(binance.api_key, dg.EnvVar) and binance.api_key.env_var_name == "BINANCE_API_KEY"
    assert isinstance(binance.api_secret, dg.EnvVar) and "the-secret-value" not in repr(binance)
    assert binance.private_key_password is None  # not set: no reference to an unset variable


def test_each_source_loads_on_its_own_and_they_merge() -> None:
    settings = Settings()
    groups = {}
    for source in (spot, exports, warehouse):
        defs = source.build_definitions(settings)
        dg.Definitions.validate_loadable(defs)
        groups[source.__name__] = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"spot_symbol_index", "spot_orders", "spot_open_orders"} <= groups[spot.__name__]
    assert {"futures_order_exports", "pm_um_orders"} <= groups[exports.__name__]
    assert "warehouse" in groups[warehouse.__name__]
    merged = build_definitions(settings)
    for key in ("binance", "lake", "spot", "exports", "catalog"):
        assert key in merged.resources


def test_the_code_location_reads_the_environment_when_loaded_not_when_imported(monkeypatch) -> None:
    """`defs` is what workspace.yaml loads: ORDERLAKE_START_DATE and the export cron take effect at load."""
    monkeypatch.setenv("ORDERLAKE_START_DATE", "2023-05-06")
    monkeypatch.setenv("ORDERLAKE_EXPORT_CRON", "0 3 * * 2")
    defs = definitions.defs()
    job = defs.resolve_job_def("spot_backfill")
    assert job.partitions_def.get_first_partition_key() == "2023-05-06"
    schedule = defs.resolve_schedule_def("export_needs_schedule")
    assert schedule.cron_schedule == "0 3 * * 2"
    monkeypatch.setenv("ORDERLAKE_EXPORT_CRON", "61 0 * * 1")
    with pytest.raises(ConfigurationError, match=r"ORDERLAKE_EXPORT_CRON"):
        definitions.defs()


def test_daily_schedule_runs_spot_and_futures_for_yesterday_in_daily_mode() -> None:
    defs = build_definitions(Settings())
    schedule = defs.resolve_schedule_def("daily_schedule")
    assert schedule.cron_schedule == "15 0 * * *" and schedule.execution_timezone in (None, "UTC")
    with dg.build_schedule_context(scheduled_execution_time=datetime(2026, 3, 5, 0, 15, tzinfo=UTC)) as ctx:
        [req] = schedule.evaluate_tick(ctx).run_requests
    assert req.partition_key == "2026-03-04"
    job = defs.resolve_job_def("daily")
    config = job.get_run_config_for_partition_key("2026-03-04")
    assert config["ops"]["spot_order_history"]["config"] == {"mode": "daily"}
    selected = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert {"spot_orders", "futures_orders_rest", "pm_um_orders_rest", "futures_trades", "pm_um_income"} <= selected
    names = {s.name for s in defs.schedules}
    assert "export_weekly_schedule" not in names and "spot_daily_schedule" not in names


def test_no_secret_anywhere_after_a_run(tmp_path: Path, monkeypatch, capsys, caplog) -> None:
    key, secret = "KEY-7f0c1d-visible-nowhere", "SECRET-93a1e2-visible-nowhere"
    data, home = tmp_path / "data", tmp_path / "dagster_home"
    home.mkdir()
    end = datetime.now(UTC).date() - timedelta(days=1)
    with start_sandbox(
        api_key=key,
        api_secret=secret,
        listed_symbols=20,
        active_symbols=3,
        history_days=5,
        busy_day_orders=50,
        time_scale=60.0,
    ) as sx:
        settings = sandbox_settings(monkeypatch, sx, data, dagster_home=home)  # runs, events, logs on disk
        assert (
            main(
                [
                    "backfill",
                    "--start",
                    (end - timedelta(days=3)).isoformat(),
                    "--end",
                    end.isoformat(),
                    "--select",
                    "spot",
                ],
                settings,
            )
            == 0
        )
    printed = capsys.readouterr()
    for text in (printed.out, printed.err, caplog.text):
        assert key not in text and secret not in text
    stored = {str(p): p.read_bytes() for p in home.rglob("*") if p.is_file()}
    stored |= {f"data dir file {i}": b for i, b in enumerate(stored_bytes(data))}  # and lake objects on S3
    with dg.DagsterInstance.from_config(str(home)) as instance:  # runs and events: SQLite files, or PostgreSQL
        stored["dagster database"] = database_text(instance).encode()
    assert any(p.endswith(".parquet") for p in lake_paths(data))
    assert any(p.endswith(".db") for p in stored) or b"spot_orders" in stored["dagster database"]
    for where, blob in stored.items():
        assert key.encode() not in blob and secret.encode() not in blob, where

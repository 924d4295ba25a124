"""The export chain as Dagster assets against the sandbox: request -> sensor ticks -> retrieval run -> partitions.

A new Definitions object (and so new resources and a new chain) is built for every sensor tick, as after a
restart of `dagster dev`; the only state is the ledger. The sandbox counts the download ids it hands out, and no
test may spend more than the ledger says.
"""

import time
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from assets.cli import main
from assets.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from assets.definitions import build_definitions
from assets.exports.assets import CHAINS, DOWNLOAD_ID_TAG
from pipeline.exports.ledger import ExportLedger
from pipeline.sandbox.testing import start_sandbox
from pipeline.settings import Settings
from pipeline.storage import lake
from pipeline.storage.lakefs import connect_catalog
from pipeline.storage.schemas import futures_orders
from tests.support.assets import lake_rows, partition_days, sandbox_settings
from tests.support.exports import EXPORT_SANDBOX, FROM_EXPORT

# Processing takes four poll cycles or more, so the sensor is seen skipping while files are generated. Links live
# 24 h (docs/binance-facts.md §Export link lifetime) on the sandbox's clock, so a loaded machine cannot outlast them.
SANDBOX = {**EXPORT_SANDBOX, "export_processing_seconds": 4 * 3600.0}


def _year() -> tuple[date, date]:
    end = datetime.now(UTC).date() - timedelta(days=1)
    return end - timedelta(days=364), end


def _request(settings: Settings, instance: dg.DagsterInstance, start: date, end: date) -> dg.ExecuteInProcessResult:
    return (
        build_definitions(settings)
        .resolve_job_def("export_requests")
        .execute_in_process(
            instance=instance,
            raise_on_error=False,
            tags={RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()},
        )
    )


def _tick(settings: Settings, instance: dg.DagsterInstance) -> dg.SensorResult | dg.SkipReason:
    defs = build_definitions(settings)  # a "restarted" code location every tick
    sensor = defs.resolve_sensor_def("export_link_sensor")
    with dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources) as ctx:
        return sensor(ctx)


def _expected(truth: dict, market: str, start: date, end: date) -> list[dict]:
    lo = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp() * 1000)
    hi = lo + ((end - start).days + 1) * 86_400_000 - 1
    want = [o for o in truth[f"{market}_orders"] if lo <= o["updateTime"] <= hi]
    rows = futures_orders.from_api(want, account="main", market=market, source="truth", ingested_at=0).to_pylist()
    return sorted(({k: r[k] for k in FROM_EXPORT} for r in rows), key=lambda r: (r["symbol"], r["order_id"]))


@pytest.mark.slow
def test_one_year_through_dagster_equals_truth(tmp_path, monkeypatch) -> None:
    data = tmp_path / "data"
    start, end = _year()
    with start_sandbox(**SANDBOX) as sx:
        settings = sandbox_settings(monkeypatch, sx, data)
        instance = dg.DagsterInstance.ephemeral()
        sx.exchange.exports_held = True  # processing for the first ticks, whatever the load on this machine
        requested = _request(settings, instance, start, end)
        assert requested.success
        meta = {
            e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
            for e in requested.get_asset_materialization_events()
        }
        assert meta["futures_order_exports"]["ids_created"].value == 1
        assert meta["futures_order_exports"]["quota_remaining"].value == sx.cfg.export_quota - 1
        assert "avg_cost_ms" in meta["pm_um_order_exports"]["created"].value[0]

        skips, launched = 0, {}
        deadline = time.monotonic() + 60
        while len(launched) < 2 and time.monotonic() < deadline:
            result = _tick(settings, instance)
            if isinstance(result, dg.SkipReason):
                skips += 1
                assert "processing" in result.skip_message
                sx.exchange.exports_held = skips < 2
                time.sleep(0.05)
                continue
            assert not sx.exchange.exports_held, "a retrieval was launched while the files were processing"
            # a ready export is asked for on every tick until its run exists; the daemon dedups by run_key
            launched.update({r.run_key: r for r in result.run_requests})
        runs = list(launched.values())
        assert skips >= 2, "the files should take several poll cycles"
        assert {r.job_name for r in runs} == {c.retrieval_job for c in CHAINS}
        ledger = ExportLedger(data)
        for req in runs:
            entry = ledger.by_download_id(req.run_key)
            assert req.tags[DOWNLOAD_ID_TAG] == req.run_key == entry.download_id
            assert (req.tags[RANGE_START_TAG], req.tags[RANGE_END_TAG]) == (start.isoformat(), end.isoformat())
            res = (
                build_definitions(settings)
                .resolve_job_def(req.job_name)
                .execute_in_process(instance=instance, tags=req.tags, raise_on_error=False)
            )
            assert res.success
            spec = next(c for c in CHAINS if c.retrieval_job == req.job_name)
            rows = {
                e.partition: e.step_materialization_data.materialization.metadata["row_count"].value
                for e in res.get_asset_materialization_events()
                if e.asset_key.to_user_string() == spec.table
            }
            stored = {
                d.isoformat(): lake.read_partition(data, spec.table, "main", d).num_rows
                for d in partition_days(data, spec.table)
            }
            assert len(rows) == 365 and rows == stored
            checks = res.get_asset_check_evaluations()
            assert checks and all(c.passed for c in checks), [(c.check_name, c.metadata) for c in checks]
        assert isinstance(_tick(settings, instance), dg.SkipReason)  # nothing left to launch

        truth = sx.truth()
        for spec in CHAINS:
            got = sorted(
                ({k: r[k] for k in FROM_EXPORT} for r in lake_rows(data, spec.table)),
                key=lambda r: (r["symbol"], r["order_id"]),
            )
            assert got == _expected(truth, spec.market, start, end) and len(got) > 100
            assert len(partition_days(data, spec.table)) == 365
        warehouse = build_definitions(settings).resolve_job_def("warehouse_build").execute_in_process(instance=instance)
        assert warehouse.success
        with connect_catalog(data / "warehouse.duckdb") as con:
            views = {
                v: con.execute(f"SELECT count(*) FROM {v}").fetchone()[0] for v in ("futures_orders", "pm_um_orders")
            }
        assert views == {spec.table: len(_expected(truth, spec.market, start, end)) for spec in CHAINS}
        again = _request(settings, instance, start, end)
        assert again.success
        assert sx.stats()["export_ids_created"] == {"usdm": 1, "pm_um": 1}
        assert sum(e.counts_quota for e in ledger.entries()) == 2


def test_quota_is_refused_before_any_call(tmp_path, monkeypatch) -> None:
    data = tmp_path / "data"
    end = datetime.now(UTC).date() - timedelta(days=1)
    start = end - timedelta(days=399)  # 400 days: two ids per endpoint
    with start_sandbox(**SANDBOX) as sx:
        settings = sandbox_settings(monkeypatch, sx, data, export_monthly_limit=1)
        result = _request(settings, dg.DagsterInstance.ephemeral(), start, end)
        assert not result.success
        [failure] = [e for e in result.all_events if e.is_step_failure][:1]
        text = failure.step_failure_data.user_failure_data.description
        assert "QuotaWouldBeExceeded" in text and "1" in text
        assert sx.stats()["export_ids_created"] == {}
        assert ExportLedger(data).entries() == []


def test_cli_no_wait_leaves_the_chain_to_the_sensor_and_fails_clearly_on_quota(tmp_path, monkeypatch, capsys) -> None:
    data = tmp_path / "data"
    start, end = _year()
    with start_sandbox(**SANDBOX) as sx:
        settings = sandbox_settings(monkeypatch, sx, data)
        assert (
            main(
                [
                    "backfill",
                    "--start",
                    start.isoformat(),
                    "--end",
                    end.isoformat(),
                    "--select",
                    "exports",
                    "--no-wait",
                    "--quiet",
                ],
                settings,
            )
            == 0
        )
        out = capsys.readouterr().out
        assert "2 export id(s) requested, 0 ingested" in out and "link sensor" in out
        assert {e.status for e in ExportLedger(data).entries()} == {"processing"}
        settings = settings.replace(export_monthly_limit=1)  # used up by the first request
        older = start - timedelta(days=30)
        assert (
            main(
                [
                    "backfill",
                    "--start",
                    older.isoformat(),
                    "--end",
                    (start - timedelta(days=1)).isoformat(),
                    "--select",
                    "exports",
                    "--quiet",
                ],
                settings,
            )
            == 1
        )
        err = capsys.readouterr().err
        assert "orderlake backfill failed" in err and "QuotaWouldBeExceeded" in err and "Traceback" not in err
        assert sx.stats()["export_ids_created"] == {"usdm": 1, "pm_um": 1}


def test_retrieval_by_hand_names_days_without_export(tmp_path) -> None:
    result = (
        build_definitions(Settings(data_dir=tmp_path))
        .resolve_job_def("futures_order_export_retrieval")
        .execute_in_process(
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
            tags={RANGE_START_TAG: "2026-01-01", RANGE_END_TAG: "2026-01-07"},
        )
    )
    assert not result.success
    text = next(e for e in result.all_events if e.is_step_failure).step_failure_data.user_failure_data.description
    assert "7 day(s) of 2026-01-01..2026-01-07 have no completed export" in text
    assert "futures_order_exports" in text

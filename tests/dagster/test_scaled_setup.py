"""The scaled setup end to end on loopback: `orderlake backfill` of spot and of the USDⓈ-M and PM exports, with the
lake on S3 (SeaweedFS), Dagster's runs, events and schedules in PostgreSQL (deploy/dagster-postgres.yaml) and the
weight budget in PostgreSQL. The lake equals the sandbox's truth, the catalog the backfill built reads it, and no
secret (Binance's, the object store's, PostgreSQL's password) is in the catalog, the data dir, the lake's objects
or Dagster's database."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster_postgres import PostgresEventLogStorage

from assets.cli import main
from pipeline.sandbox.testing import start_sandbox
from pipeline.storage import lake, lakefs
from pipeline.storage.schemas import futures_orders
from tests.support.assets import STAMPS, sandbox_settings, truth_spot_orders
from tests.support.exports import EXPORT_SANDBOX, FROM_EXPORT
from tests.support.services import S3Service

ROOT = Path(__file__).resolve().parents[2]
SPOT_DAYS = 10
EXPORT_DAYS = 40
SANDBOX = {
    **EXPORT_SANDBOX,
    "history_days": SPOT_DAYS,
    "export_processing_seconds": 3600.0,
    "export_link_ttl_seconds": 7 * 86_400.0,
}


def _rows(data: Path, table: str, keep: tuple[str, ...] | None = None) -> list[dict]:
    found = lake.account_dataset(data, table, "main")
    rows = found.to_table().to_pylist() if found is not None else []
    spec_key = ("symbol", "order_id")
    out = [{k: v for k, v in r.items() if k not in STAMPS and (keep is None or k in keep)} for r in rows]
    return sorted(out, key=lambda r: tuple(r[k] for k in spec_key))


def _expected_futures(truth: dict, market: str, start: date, end: date) -> list[dict]:
    lo = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp() * 1000)
    hi = lo + ((end - start).days + 1) * 86_400_000 - 1
    want = [o for o in truth[f"{market}_orders"] if lo <= o["updateTime"] <= hi]
    rows = futures_orders.from_api(want, account="main", market=market, source="truth", ingested_at=0).to_pylist()
    return sorted(({k: r[k] for k in FROM_EXPORT} for r in rows), key=lambda r: (r["symbol"], r["order_id"]))


def _dagster_database_text(url: str) -> str:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        tables = [t for (t,) in cur.fetchall()]
        parts = []
        for table in tables:
            cur.execute(f'SELECT CAST(t AS text) FROM "{table}" t')
            parts += [row[0] for row in cur.fetchall()]
    return "\n".join(parts)


@pytest.mark.slow
def test_spot_and_exports_backfill_on_s3_and_postgres_equal_the_truth(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_service: S3Service,
    postgres_url: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    data, home = tmp_path / "data", tmp_path / "dagster-home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    monkeypatch.setenv("ORDERLAKE_DAGSTER_PG_URL", postgres_url.replace("postgresql://", "postgresql+psycopg2://"))
    end = datetime.now(UTC).date() - timedelta(days=1)
    spot_start, export_start = end - timedelta(days=SPOT_DAYS - 1), end - timedelta(days=EXPORT_DAYS - 1)
    with start_sandbox(**SANDBOX) as sx:
        settings = sandbox_settings(
            monkeypatch,
            sx,
            data,
            dagster_home=home,
            budget_url=postgres_url,
            lake_url=s3_service.lake_url,
            aws_endpoint_url=s3_service.endpoint,
            aws_access_key_id=s3_service.key,
            aws_secret_access_key=s3_service.secret,
            aws_region=s3_service.region,
        )
        for name, value in settings.secret_environment().items():
            monkeypatch.setenv(name, value)  # the EnvVar references of the runs' resources
        try:
            caplog.set_level("DEBUG")
            for start, select in ((spot_start, "spot"), (export_start, "exports")):
                argv = ["backfill", "--start", start.isoformat(), "--end", end.isoformat(), "--select", select]
                assert main(argv, settings) == 0
            truth = sx.truth()
            spot = _rows(data, "spot_orders")
            usdm = _rows(data, "futures_orders", FROM_EXPORT)
            pm = _rows(data, "pm_um_orders", FROM_EXPORT)
            where = lakefs.location(data)
            objects = [i.path for i in where.files(where.root)]
            blobs = [p.read_bytes() for p in data.rglob("*") if p.is_file()]
            for key in objects:
                with where.fs.open_input_stream(key) as fh:
                    blobs.append(fh.read())
            assert (
                main(["sql", "SELECT market, count(*) AS n FROM orders GROUP BY market ORDER BY market"], settings) == 0
            )
            printed = capsys.readouterr()
            # every logger at every level, botocore's signed requests included (pipeline/storage/s3log.py)
            logs = "\n".join([printed.out, printed.err, caplog.text, *(r.getMessage() for r in caplog.records)])
        finally:
            lakefs.configure(settings.replace(lake_url=None))
        assert spot == truth_spot_orders(truth, spot_start, end)
        assert usdm == _expected_futures(truth, "usdm", export_start, end)
        assert pm == _expected_futures(truth, "pm_um", export_start, end)
        assert sx.stats()["export_ids_created"] == {"usdm": 1, "pm_um": 1}
    assert not (data / "lake").exists()  # every partition is an object
    assert any("/spot_orders/account=main/date=" in k for k in objects)
    assert any("/pm_um_orders/account=main/date=" in k for k in objects)
    with dg.DagsterInstance.from_config(str(home)) as instance:  # the runs are in PostgreSQL
        runs = instance.get_runs()
        assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    stored = _dagster_database_text(postgres_url)
    assert "spot_orders" in stored  # the events are there, so the grep below can see them
    assert "usdm" in logs and "pm_um" in logs  # the catalog the backfill built answers over S3
    password = postgres_url.split(":")[2].split("@")[0]
    secrets = [settings.api_secret.reveal(), settings.api_key.reveal(), s3_service.secret, s3_service.key, password]
    leaks = [s for s in secrets for blob in [*blobs, stored.encode(), logs.encode()] if s.encode() in blob]
    assert leaks == []

"""The worked deployment examples load and keep their promises: Dagster on PostgreSQL through an environment
reference, queued runs limited to one per account, and no secret value in either file."""

import re
import shutil
from pathlib import Path

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

ROOT = Path(__file__).resolve().parents[2]
ONE_PER_ACCOUNT = {"key": "orderlake/account", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}


def test_the_celery_instance_is_postgres_with_one_run_per_account(tmp_path: Path, monkeypatch) -> None:
    shutil.copy(ROOT / "deploy" / "celery" / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("ORDERLAKE_DAGSTER_PG_URL", "postgresql+psycopg2://u:p@127.0.0.1:1/d")
    config, _ = dagster_instance_config(str(tmp_path))
    pg_url = {"postgres_url": {"env": "ORDERLAKE_DAGSTER_PG_URL"}}
    assert config["run_storage"]["config"] == config["schedule_storage"]["config"] == pg_url
    assert config["event_log_storage"] == {
        "module": "assets.common.pg_event_log",
        "class": "PooledPostgresEventLogStorage",
        "config": pg_url,
    }
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["runs"]["tag_concurrency_limits"] == [ONE_PER_ACCOUNT]


def test_the_helm_values_queue_one_run_per_account_and_hold_no_secret() -> None:
    text = (ROOT / "deploy" / "k8s" / "values.yaml").read_text()
    values = yaml.safe_load(text)
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued["tagConcurrencyLimits"] == [ONE_PER_ACCOUNT]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["ORDERLAKE_EXECUTOR"] == "k8s" and env["ORDERLAKE_ACCOUNTS_FILE"].endswith("accounts.toml")
    assert {s["name"] for s in deployment["envSecrets"]} == {"orderlake-accounts", "orderlake-services"}
    assert not re.search(r"(?i)(password|secret_access_key|api_secret)\s*:", text)


@pytest.mark.parametrize("name", ["celery/dagster.yaml", "k8s/values.yaml"])
def test_no_url_with_a_password(name: str) -> None:
    assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", (ROOT / "deploy" / name).read_text())

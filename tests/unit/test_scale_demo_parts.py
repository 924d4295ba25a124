"""Parts of `make scale-demo` that need no service: the processes it starts are stopped on every exit, and the
canary finds a planted secret wherever it is written."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.scale.demo import DemoConfig, _exports, _passwords, cleanup, files_with, instance_yaml
from pipeline.scale.processes import Processes
from pipeline.settings import child_environment

ROOT = Path(__file__).resolve().parents[2]


def test_processes_are_stopped_when_the_block_fails(tmp_path: Path) -> None:
    env = child_environment({"ORDERLAKE_X": "1"})
    code = "import time, signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    with pytest.raises(RuntimeError, match="boom"), Processes(tmp_path, grace_s=1.0) as procs:
        stubborn = procs.start("stubborn", [sys.executable, "-c", code], env)
        polite = procs.start("polite", [sys.executable, "-c", "import time; time.sleep(60)"], env)
        deadline = time.monotonic() + 30
        while "up" not in (tmp_path / "stubborn.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        raise RuntimeError("boom")
    assert polite.poll() is not None and stubborn.poll() is not None  # SIGTERM, then SIGKILL for the stubborn one
    assert procs.started == {}


def test_a_dead_process_is_reported_with_its_log(tmp_path: Path) -> None:
    with Processes(tmp_path) as procs:
        proc = procs.start("dies", [sys.executable, "-c", "print('cannot start: no broker'); raise SystemExit(3)"], {})
        proc.wait(30)
        with pytest.raises(RuntimeError, match=r"dies exited with 3:\ncannot start: no broker"):
            procs.check()


def test_child_environment_drops_this_process_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERLAKE_ACCOUNTS_FILE", "/elsewhere.toml")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-children")
    env = child_environment({"ORDERLAKE_DATA_DIR": "/d"})
    assert "ORDERLAKE_ACCOUNTS_FILE" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert env["ORDERLAKE_DATA_DIR"] == "/d" and "PATH" in env
    out = subprocess.run([sys.executable, "-c", "import os; print(os.environ.get('AWS_SECRET_ACCESS_KEY'))"],
                         env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == "None"


def test_canary_finds_a_secret_in_any_file(tmp_path: Path) -> None:
    (tmp_path / "lake" / "t").mkdir(parents=True)
    (tmp_path / "lake" / "t" / "part.parquet").write_bytes(b"PAR1\\x00 ... sec-ret-4711 ... PAR1")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "worker.log").write_text("nothing to see")
    assert files_with(["sec-ret-4711", ""], [tmp_path]) == [str(tmp_path / "lake" / "t" / "part.parquet")]
    assert files_with(["absent-value"], [tmp_path]) == []


def test_services_output_is_read_as_variables() -> None:
    text = "export A=postgresql://u:p@127.0.0.1:1/postgres\nnoise\nexport B=x=y\n"
    assert _exports(text) == {"A": "postgresql://u:p@127.0.0.1:1/postgres", "B": "x=y"}


def test_the_canary_looks_for_the_object_stores_key_id_too() -> None:
    services = {
        "ORDERLAKE_TEST_S3_KEY": "the-s3-key-id",
        "ORDERLAKE_TEST_S3_SECRET": "the-s3-secret",
        "ORDERLAKE_TEST_POSTGRES_URL": "postgresql://u:pg-password@127.0.0.1:1/postgres",
        "ORDERLAKE_TEST_REDIS_URL": "redis://:redis-password@127.0.0.1:2/0",
    }
    assert _passwords(services) == ["the-s3-key-id", "the-s3-secret", "pg-password", "redis-password"]


def test_the_demo_instance_is_the_deploy_example_with_its_run_limit(tmp_path: Path) -> None:
    import yaml

    source = ROOT / "deploy" / "celery" / "dagster.yaml"
    instance_yaml(source, tmp_path / "dagster.yaml", 4)
    shipped, demo = yaml.safe_load(source.read_text()), yaml.safe_load((tmp_path / "dagster.yaml").read_text())
    assert (
        demo["concurrency"]["runs"]["max_concurrent_runs"] == 4 != shipped["concurrency"]["runs"]["max_concurrent_runs"]
    )
    demo["concurrency"]["runs"]["max_concurrent_runs"] = shipped["concurrency"]["runs"]["max_concurrent_runs"]
    assert demo == shipped
    assert DemoConfig(accounts=20, workers=2).runs_at_once == 4
    assert DemoConfig(accounts=20, days=30).backfill_timeout_s == 1800.0 and DemoConfig().backfill_timeout_s == 900.0


def test_cleanup_runs_every_step_and_reports_the_one_that_fails() -> None:
    done: list[str] = []
    said: list[str] = []

    def missing_prefix() -> None:
        raise FileNotFoundError("Path does not exist 'orderlake-demo/run/'")

    cleanup(
        [("a", lambda: done.append("a")), ("the prefix", missing_prefix), ("c", lambda: done.append("c"))], said.append
    )
    assert done == ["a", "c"]
    assert said == [
        "scale demo: could not clean up the prefix: FileNotFoundError: Path does not exist 'orderlake-demo/run/'"
    ]

"""`make scale-demo N=3` as CI runs it: 3 sandbox accounts on 2 Celery workers with the daemon, Dagster on its own
PostgreSQL database, the broker on Redis, the budget shared in PostgreSQL. The command itself proves each account's
lake equals its truth, 0 × 429 and 0 × 418, one download id per account and market, and the canary; this test
checks that it says so, that it exits 0, and that nothing it started is left running."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import postgres_admin_url

ROOT = Path(__file__).resolve().parents[2]


def _started_by_demo(workdir: Path) -> list[str]:
    """Processes whose environment points at the demo's directory (its workers, daemon and run processes)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"DAGSTER_HOME={workdir}".encode() in environ.read_bytes():
                found.append(environ.parent.name)
        except OSError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.timeout(1500)
def test_make_scale_demo_with_three_accounts(tmp_path: Path) -> None:
    postgres_admin_url()  # the services are up (CI starts them; on a developer's machine: skipped without them)
    workdir = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "scale-demo", "--accounts", "3", "--workers", "2", "--days", "10",
         "--workdir", str(workdir), "--timeout", "900"],
        cwd=ROOT, capture_output=True, text=True, timeout=1400, check=False,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    assert out.strip().splitlines()[-1] == "scale demo: OK"
    assert out.count("  yes") == 9  # 3 accounts × spot, USDⓈ-M, PM: lake = truth
    assert "shared per-IP budget: 0 × 429, 0 × 418" in out
    assert "canary (keys, secrets, passwords in catalog, lake, Dagster's database, logs): none" in out
    assert "wall time, end to end: parallel" in out
    assert _started_by_demo(workdir) == []

"""`make ui` stops on SIGINT and SIGTERM, even when started with SIGINT ignored (a background job), and takes
everything dagster dev started with it: a child that exits on SIGINT stops at once, a stuck one (and its own
child) is killed after the grace period."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHILD = """
import json, signal, subprocess, sys, time
if sys.argv[2] == "stuck":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[1], "w").write(json.dumps([__import__("os").getpid(), grandchild.pid]))
try:
    time.sleep(600)
except KeyboardInterrupt:
    grandchild.terminate()
    sys.exit(0)
"""


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie is gone too


def _wait_for(path: Path, limit_s: float = 60) -> list[int]:
    deadline = time.monotonic() + limit_s
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    ("mode", "sig"), [("polite", signal.SIGTERM), ("stuck", signal.SIGTERM), ("polite", signal.SIGINT)]
)
def test_supervisor_stops_dagster_dev_like_children(tmp_path: Path, mode: str, sig: int) -> None:
    grace = 2 if mode == "stuck" else 120  # a polite child must stop long before a grace period that long
    pids = tmp_path / "pids.json"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    code = (
        "import sys; from assets.cli.ui import supervise; "
        f"sys.exit(supervise([sys.executable, {str(script)!r}, {str(pids)!r}, {mode!r}], grace_s={grace}))"
    )
    supervisor = subprocess.Popen(
        [sys.executable, "-c", code],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # as a background job starts it
        stderr=subprocess.PIPE,
        text=True,
    )
    child, grandchild = _wait_for(pids)
    started = time.monotonic()
    supervisor.send_signal(sig)
    assert supervisor.wait(timeout=60) == 128 + sig
    stopped = time.monotonic() - started
    assert "orderlake ui: stopping" in supervisor.stderr.read()
    assert _gone(child) and _gone(grandchild)
    assert stopped < (grace if mode == "polite" else 60)

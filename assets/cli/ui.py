"""``orderlake ui`` (``make ui``): ``dagster dev`` that stops when asked.

``dagster dev`` only shuts down on KeyboardInterrupt and maps SIGTERM to whatever SIGINT does; started where
SIGINT is ignored (a background job, some process managers) it ignores both. This supervisor starts it in its
own process group with both signals at their defaults (a handled signal resets at exec), forwards SIGINT or
SIGTERM as SIGINT (its orderly shutdown), and kills the whole group if it has not stopped within
:data:`STOP_GRACE_S`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

STOP_GRACE_S = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--workspace", default="workspace.yaml", help="Dagster workspace file")
    return parser


def supervise(command: Sequence[str], *, grace_s: float = STOP_GRACE_S) -> int:
    """Run ``command`` until it exits or this process gets SIGINT/SIGTERM; then stop it within ``grace_s``."""
    asked: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        asked.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        # its own group: a Ctrl-C reaches only this supervisor, which decides; handled signals reset at exec
        child = subprocess.Popen(command, start_new_session=True)
        while child.poll() is None and not asked:
            time.sleep(0.2)
        if child.poll() is not None:
            return child.returncode
        print(f"orderlake ui: stopping (at most {grace_s:.0f} s)", file=sys.stderr, flush=True)
        os.killpg(child.pid, signal.SIGINT)
        deadline = time.monotonic() + grace_s
        while child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):  # the server, the daemon and code servers it started
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        return 128 + asked[0]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run(args: argparse.Namespace) -> int:
    dagster = Path(sys.executable).with_name("dagster")
    return supervise([str(dagster), "dev", "-w", args.workspace])

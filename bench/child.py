"""``python -m bench.child module:function '<json args>'``: one measurement in a process of its own.

Prints the function's JSON result with ``peak_rss_mb`` (the process's high-water mark, imports included, as a user
running that code would see it), ``base_rss_mb`` (after importing the function's module, before calling it) and
``cpu_s`` (the CPU time of the call, every thread's user and system time: what a loaded machine does not distort).

The high-water mark is ``VmHWM`` of /proc/self/status, not ``ru_maxrss``: Linux carries ``ru_maxrss`` over
fork + exec, so a child of a big parent would report the parent's size.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
from pathlib import Path

STATUS = Path("/proc/self/status")


def _rss_mb() -> float:
    if STATUS.is_file():
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere: the best there is


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str]) -> int:
    module, _, name = argv[0].partition(":")
    function = getattr(importlib.import_module(module), name)
    base, cpu = _rss_mb(), _cpu_s()
    result = function(**json.loads(argv[1]))
    print(json.dumps({**result, "base_rss_mb": base, "peak_rss_mb": _rss_mb(), "cpu_s": _cpu_s() - cpu}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

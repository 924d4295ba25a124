"""What every scenario shares: the run context, targets, figures and a subprocess runner.

A scenario is a function ``run(ctx) -> ScenarioResult``. It returns :class:`Figure` rows for the main table (each
a ratio next to its target) plus free-form detail lines; :mod:`bench.report` renders them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Mode = Literal["smoke", "quick", "full"]
ROOT = Path(__file__).resolve().parents[1]
CHILD_TIMEOUT_S = 900


@dataclass(frozen=True)
class Context:
    """One benchmark run: its size (``mode``) and where scenarios may write (wiped per scenario)."""

    mode: Mode
    work_dir: Path
    postgres_url: str | None = None  # a server P5 may create a throwaway database on (--postgres-url)

    def fresh_dir(self, name: str) -> Path:
        """An empty directory for one scenario or strategy, so no run reuses another's lake, index or budget."""
        path = self.work_dir / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path


@dataclass(frozen=True)
class Target:
    """``ratio <= value`` or ``ratio >= value``; knows how far a ratio is from it."""

    op: Literal["<=", ">="]
    value: float

    def met(self, ratio: float) -> bool:
        return ratio <= self.value if self.op == "<=" else ratio >= self.value

    def miss(self, ratio: float) -> str:
        """``"40 % above the target"``: the "by how much" of the closing note."""
        if self.op == "<=":
            return f"{fmt_ratio(ratio)} is {(ratio / self.value - 1) * 100:.0f} % above the target {self}"
        return f"{fmt_ratio(ratio)} is {(1 - ratio / self.value) * 100:.0f} % short of the target {self}"

    def __str__(self) -> str:
        return f"{'≤' if self.op == '<=' else '≥'} {self.value:g}"


@dataclass(frozen=True)
class Figure:
    """One row of the main table: our figure, what it is compared with, the ratio and whether it meets its target.

    ``ok`` holds extra conditions of the target besides the ratio (e.g. P2: no 429); ``why`` is the explanation the
    closing note prints when the figure misses (or a remark worth reading when it does not).
    """

    scenario: str
    name: str
    ours: str
    theirs: str
    ratio: float | None
    target: Target | None = None
    ok: bool = True
    why: str = ""

    @property
    def met(self) -> bool | None:
        if self.target is None or self.ratio is None:
            return None
        return self.ok and self.target.met(self.ratio)


@dataclass
class ScenarioResult:
    """What one scenario measured: table rows, detail lines (markdown) and how long it took."""

    key: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    seconds: float = 0.0


def fmt_ratio(x: float | None) -> str:
    """Ratios far below 1 also as "1/N", which reads better than 0.0004."""
    if x is None:
        return "—"
    if 0 < x < 0.1:
        return f"{x:.4f} (1/{1 / x:,.0f})"
    return f"{x:.2f}"


def fmt_int(n: float) -> str:
    return f"{n:,.0f}"


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def run_child(function: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run ``bench.child`` on ``"module:function"`` in a fresh interpreter and return its JSON result.

    A fresh process per measurement because peak RSS is a process-wide high-water mark: nothing measured before
    (nor this parent's memory) may count towards the next figure.
    """
    proc = subprocess.run(  # `-m` from ROOT: bench and the project import from the checkout
        [sys.executable, "-m", "bench.child", function, json.dumps(args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{function} failed in its subprocess:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])

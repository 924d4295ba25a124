"""``make test`` runs the whole benchmark suite at smoke sizes, so the benchmark code cannot rot unnoticed.

Figures at these sizes mean nothing (the targets are not asserted); what is asserted is that every scenario runs
end to end against the sandbox, checks itself against the truth, and renders a report with a row per figure.
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("P1", "P2", "P3", "P4", "P5", "P6", "P7")


@pytest.mark.slow
def test_every_benchmark_scenario_runs_at_smoke_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # bench/ is run as `python -m bench` from the root, not installed
    from bench.cli import main

    out = tmp_path / "results.md"
    assert main(["--smoke", "--work-dir", str(tmp_path / "work"), "--out", str(out)]) == 0
    report = out.read_text()
    assert "Mode: smoke sizes" in report and "## Closing notes" in report
    for key in SCENARIOS:
        assert f"\n## {key}: " in report
        assert f"\n| {key} | " in report  # at least one figure in the main table
    ours = next(line for line in report.splitlines() if line.startswith("| ours (planner"))
    assert "| complete |" in ours  # P1: our backfill returned exactly the sandbox's truth

"""Module docstrings are a contract plus a pointer, and no measured figure lives in code (pipeline/ and assets/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.code_text import MAX_MODULE_DOCSTRING_LINES, measured_figures, module_docstring_lines, prose

ROOT = Path(__file__).resolve().parents[2]
CODE = sorted(p for top in ("pipeline", "assets") for p in (ROOT / top).rglob("*.py"))


def test_the_scan_sees_the_code() -> None:
    assert len(CODE) > 50
    assert any(p.where.startswith("pipeline/storage/lake.py:") for p in prose(ROOT / "pipeline/storage/lake.py", ROOT))


def test_module_docstrings_are_short() -> None:
    long = {str(p.relative_to(ROOT)): n for p in CODE if (n := module_docstring_lines(p)) > MAX_MODULE_DOCSTRING_LINES}
    assert long == {}, (
        f"module docstrings over {MAX_MODULE_DOCSTRING_LINES} lines: say what the module is for and what callers may "
        "rely on, and move the design essay to docs/design/"
    )


def test_no_measured_figure_in_code() -> None:
    found = [f"{p.where}: {fig!r}" for path in CODE for p in prose(path, ROOT) for fig in measured_figures(p.text)]
    assert found == [], "measured figures belong in bench/results.md (or docs/ for a design fact):\n" + "\n".join(found)


@pytest.mark.parametrize(
    "text",
    [
        "Measured on a 39k-row export day: ~6 ms, where Arrow's sort took ~8.5 ms.",
        "it costs write time (measured: ~40% faster writes of small partitions)",
        "Measured (5M orders, 730 days -> 24 files): queries 1.0-1.4x the same rows in one file",
        "0.14-0.17 ms per file as measured on 730 daily files",
        "the old path took 120 ms",
        "ParquetFile.read: ~3x less overhead per small file than read_table",
        "a single thread was about 15 % slower",
        "benchmarks show 2.5x",
        "bytes.__contains__ is memchr-fast: ~1 ms per 3 MB",
        "compacting costs ~0.25 s a month, once",
    ],
)
def test_a_measured_figure_is_found(text: str) -> None:
    assert measured_figures(text)


@pytest.mark.parametrize(
    "text",
    [
        "one create call per host every 31 s (a 1000-weight call against a 2400/min budget)",
        "1.0 in production, e.g. 1/60 against a sandbox running 60x faster",
        "4 GiB: ~20M order rows; far above any real order export",
        "CSV deflates ~5-20x; a zero-filled bomb ~1000x",
        "Server clock: local time plus a measured offset to Binance's clock",
        "measured_weight: the client's own figure",
        "1 MiB blocks keep it small at no measurable cost in speed",
        "Binance's own example average is about 2 h for an export",
    ],
)
def test_a_rule_or_bound_is_not_a_measured_figure(text: str) -> None:
    assert measured_figures(text) == []

"""Markdown for ``bench/results.md`` (and the terminal): header with date and machine, the table, details, notes."""

from __future__ import annotations

import os
import platform
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench.core import Figure, Mode, ScenarioResult, fmt_ratio

LIBRARIES = ("pyarrow", "duckdb", "pandas", "dagster", "ccxt")
MODE_TEXT = {
    "full": "full suite (`make bench`)",
    "quick": "reduced suite (`make bench QUICK=1`): smaller accounts and files, see each scenario's title",
    "smoke": "smoke sizes (`python -m bench --smoke`, run by `make test`): checks the code runs, not the claims",
}


def machine() -> str:
    """CPU, cores, memory, OS, Python and the versions of the libraries the comparisons depend on."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    libs = ", ".join(f"{name} {metadata.version(name)}" for name in LIBRARIES)
    return (
        f"{cpu}, {os.cpu_count()} cores, {_memory_gb():.0f} GB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; {libs}"
    )


def _memory_gb() -> float:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 0.0
    return pages * size / 2**30


def fsync_ms(directory: Path, rounds: int = 20) -> float:
    """Milliseconds to write and fsync a small file and fsync its directory, as every lake partition write does.

    Printed with the results because it varies a lot on a shared disk and drives P3's and P5's absolute times.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ".fsync-probe"
    t0 = time.perf_counter()
    for _ in range(rounds):
        with open(path, "wb") as fh:
            fh.write(b"x" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
        fd = os.open(directory, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    path.unlink()
    return (time.perf_counter() - t0) / rounds * 1000


def render(
    results: list[ScenarioResult], *, mode: Mode, seconds: float, machine_text: str, fsync: tuple[float, float]
) -> str:
    figures = [f for r in results for f in r.figures]
    lines = [
        "# orderlake benchmarks",
        "",
        f"* Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"* Machine: {machine_text}; fsync of a small file + its directory: {fsync[0]:.1f} ms before the run, "
        f"{fsync[1]:.1f} ms after it",
        f"* Mode: {MODE_TEXT[mode]}; the whole run took {seconds:.0f} s",
        "* Every claim is a RATIO of two figures measured side by side in this run on the same data; absolute "
        "times are context only (the machine is shared and noisy).",
        "",
        "| # | figure | ours | compared with | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [_row(f) for f in figures]
    for r in results:
        lines += ["", f"## {r.key}: {r.title}", "", *r.details, "", f"Scenario time: {r.seconds:.0f} s."]
    lines += ["", "## Closing notes", "", *_notes(figures)]
    return "\n".join(lines) + "\n"


def _row(f: Figure) -> str:
    met = {True: "yes", False: "**NO**", None: "—"}[f.met]
    return (
        f"| {f.scenario} | {f.name} | {f.ours} | {f.theirs} | {fmt_ratio(f.ratio)} | "
        f"{f.target if f.target else '—'} | {met} |"
    )


def _shortfall(f: Figure) -> str:
    if f.target is None or f.ratio is None:
        return ""
    if f.target.met(f.ratio):
        return f"the ratio {fmt_ratio(f.ratio)} is within {f.target}, but a condition of the target fails"
    return f.target.miss(f.ratio)


def _notes(figures: list[Figure]) -> list[str]:
    """Every missed target with by how much and why; then the remarks that explain figures that met theirs."""
    missed = [f for f in figures if f.met is False]
    lines = [f"* **Missed** {f.scenario} {f.name}: {_shortfall(f)}{'; ' + f.why if f.why else ''}." for f in missed]
    if not missed:
        lines.append("* Every figure with a target met it.")
    lines += [f"* {f.scenario} {f.name}: {f.why}." for f in figures if f.met is not False and f.why]
    return lines

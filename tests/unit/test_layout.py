"""The dependency arrows point cli -> assets -> pipeline only, and `python -m pipeline` is the `orderlake` command."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("sandbox", "backfill", "check", "sql", "status", "exports", "demo", "ui")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import, including relative ones resolved against the file's package."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found += [(node.lineno, f"{module}.{alias.name}" if module else alias.name) for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            found += [(node.lineno, str(getattr(arg, "value", ""))) for arg in node.args[:1]]
    return found


def _offenders(top: str, forbidden: str, *, skip: str | None = None) -> list[str]:
    out = []
    for path in sorted((ROOT / top).rglob("*.py")):
        if skip and path.is_relative_to(ROOT / skip):
            continue
        for line, module in _imports(path):
            if module == forbidden or module.startswith(forbidden + "."):
                out.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return out


def test_pipeline_never_imports_assets() -> None:
    assert _offenders("pipeline", "assets") == []


def test_assets_never_import_the_cli() -> None:
    assert _offenders("assets", "assets.cli", skip="assets/cli") == []


def test_the_scan_sees_imports() -> None:
    assert any(m.startswith("assets.") for _, m in _imports(ROOT / "assets" / "cli" / "__init__.py"))
    assert _offenders("assets", "pipeline")  # the assets do import the core


def test_python_m_pipeline_is_the_orderlake_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "ORDERLAKE_"))}
    run = subprocess.run(
        [sys.executable, "-m", "pipeline", "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0, run.stderr
    for command in COMMANDS:
        assert f"    {command} " in run.stdout
    env["ORDERLAKE_DATA_DIR"] = str(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "pipeline", "exports", "list"], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "(0 rows)"
    env["ORDERLAKE_TIME_SCALE"] = "fast"
    run = subprocess.run(
        [sys.executable, "-m", "pipeline", "status"], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [
        "orderlake status: invalid configuration: ORDERLAKE_TIME_SCALE='fast' is invalid (Input should be a valid "
        "number, unable to parse string as a number); allowed: number > 0"
    ]


def test_no_module_of_pipeline_or_assets_is_over_600_lines() -> None:
    sizes = {p: len(p.read_text().splitlines()) for top in ("pipeline", "assets") for p in (ROOT / top).rglob("*.py")}
    assert len(sizes) > 50
    assert {str(p.relative_to(ROOT)): n for p, n in sizes.items() if n > 600} == {}

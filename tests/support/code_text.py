"""The prose inside Python code (comments and docstrings), and two rules on it: module docstrings stay short, and no
measured figure lives in code (figures go to ``bench/results.md``, design facts to ``docs/``).

A measured figure is a number with a unit or a ratio (``6 ms``, ``~40%``, ``3x``, ``1.0-1.4x``, ``0.25 s``) that sits
near ``measured`` or ``benchmark``, follows ``took``, is approximate (``~``, ``≈``, ``about``) and compares speed or
cost (``faster``, ``slower``, ``overhead``), or is an approximate duration under a minute (``~1 ms per 3 MB``). A
number that states a rule (``31 s per limiter group``, ``60x faster`` for the sandbox's time scale, ``4 GiB`` as a
bound, ``about 2 h`` for Binance to build an export) is not one.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_MODULE_DOCSTRING_LINES = 15

_NUMBER = r"\d[\d,]*(?:\.\d+)?(?:\s?[-–]\s?\d[\d,]*(?:\.\d+)?)?"  # 6, 0.25, 1,200, 1.0-1.4
_FIGURE = _NUMBER + r"\s?(?:ms|µs|us|s|sec|seconds|min|%|x|×|MB|MiB|GB|GiB)(?!\w)"
_MEASURED = r"\b(?:measured|benchmark(?:ed|s)?)\b"
_MEASURED_NEAR_FIGURE = re.compile(
    rf"{_MEASURED}[^.;]{{0,100}}?{_FIGURE}|{_FIGURE}[^.;]{{0,60}}?{_MEASURED}",
    re.IGNORECASE,
)
_TOOK_FIGURE = re.compile(rf"\btook\s+(?:~|≈|about\s+)?{_FIGURE}", re.IGNORECASE)
_APPROX_COMPARISON = re.compile(
    rf"(?:~|≈|\babout\s+){_FIGURE}[^.;]{{0,50}}?\b(?:faster|slower|quicker|overhead|speed-?up)\b"
    rf"|\b(?:faster|slower|quicker|overhead|speed-?up)\b[^.;]{{0,50}}?(?:~|≈|\babout\s+){_FIGURE}",
    re.IGNORECASE,
)
_APPROX_TIMING = re.compile(
    rf"(?:~|≈|\babout\s+){_NUMBER}\s?(?:ms|µs|us|s|sec|seconds)(?!\w)",
    re.IGNORECASE,
)
RULES = (_MEASURED_NEAR_FIGURE, _TOOK_FIGURE, _APPROX_COMPARISON, _APPROX_TIMING)


@dataclass(frozen=True)
class Prose:
    """One comment or docstring: where it starts and its text."""

    where: str  # "path:line"
    text: str


def prose(path: Path, root: Path) -> Iterator[Prose]:
    """Every comment and every module, class and function docstring of a Python file."""
    source = path.read_text(encoding="utf-8")
    rel = path.relative_to(root).as_posix()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            yield Prose(f"{rel}:{tok.start[0]}", tok.string.lstrip("#").strip())
    tree = ast.parse(source, filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield Prose(f"{rel}:{node.body[0].lineno}", doc)


def measured_figures(text: str) -> list[str]:
    """The measured figures in one piece of prose (the matched phrases)."""
    flat = " ".join(text.split())
    return [m.group(0) for rule in RULES for m in rule.finditer(flat)]


def module_docstring_lines(path: Path) -> int:
    """How many lines the module docstring spans (0 without one)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)
    return len(doc.splitlines()) if doc else 0

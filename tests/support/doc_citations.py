"""Find citations of the repository's docs (``docs/x.md`` and ``docs/x.md §Heading``) and check they resolve.

A citation names a file under ``docs/`` and optionally one or more headings of it, each after a ``§`` (a space
after the ``§`` is allowed): ``docs/binance-facts.md §Retention`` or ``docs/binance-facts.md § Retention (and
§ Spot allOrders)``. Every ``§`` between a citation and the next citation on the same line names a heading of the
cited file. A heading is matched as the longest heading that the text after ``§`` starts with, followed by a
non-word character or the end of the line, so a citation may sit inside prose or a code comment.
Relative Markdown links between docs (``[x](design/budget.md#…)``) are checked too. Outside Markdown files a ``§``
with no citation before it on its line is reported: it is a citation wrapped across lines, which no check can resolve.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# Where citations may appear: code, tests, benchmarks, deployment files, the README and the docs themselves.
SCANNED_DIRS = ("pipeline", "assets", "tests", "bench", "docs", "deploy", ".ci")
SCANNED_ROOT_FILES = ("README.md", "Makefile", "pyproject.toml", "workspace.yaml")
SCANNED_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".cfg", ".ini", ""}
SKIPPED_PARTS = {"__pycache__", ".venv", "node_modules", ".pytest_cache", ".ruff_cache"}

# Files that exist only outside the repository (the team's reference notes and design map): code and docs must
# not cite them. A name preceded by a path ("docs/peers.md") is a repository file and is not matched.
OUTSIDE_FILES = (
    "binance-api.md",
    "INTERFACES.md",
    "dagster-notes",
    "export-evidence",
    "style-anchors",
    "peers.md",
    "DESIGN.md",
)
_OUTSIDE = re.compile("|".join(rf"(?<![\w/.-]){re.escape(name)}" for name in OUTSIDE_FILES))

_CITATION = re.compile(r"(?<![\w/.-])docs/(?:[\w.-]+/)*[\w.-]+\.md")
_SECTION = re.compile(r"§[ \t]*")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^[ \t]*(```|~~~)")
_MD_LINK = re.compile(r"\]\(([^)\s#]+\.md)(?:#[^)\s]*)?\)")


@dataclass(frozen=True)
class Problem:
    """One unresolved citation: where it is and why it does not resolve."""

    where: str  # "path:line"
    cited: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.cited!r} {self.reason}"


def scanned_files(root: Path) -> Iterator[Path]:
    """Every text file under the scanned directories plus the scanned root files, in a stable order."""
    for name in SCANNED_ROOT_FILES:
        if (root / name).is_file():
            yield root / name
    for top in SCANNED_DIRS:
        base = root / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and path.suffix in SCANNED_SUFFIXES and not SKIPPED_PARTS & set(path.parts):
                yield path


def headings(markdown: str) -> list[str]:
    """The text of every Markdown heading outside fenced code blocks."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            found.append(match.group(2).strip())
    return found


def _match_heading(text: str, candidates: Iterable[str]) -> str | None:
    """The longest heading that ``text`` starts with, ending at a word boundary."""
    best = None
    for heading in candidates:
        if text.startswith(heading):
            rest = text[len(heading) : len(heading) + 1]
            if (not rest or not (rest.isalnum() or rest == "_")) and (best is None or len(heading) > len(best)):
                best = heading
    return best


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def check_citations(root: Path, files: Iterable[Path], *, skip: Iterable[Path] = ()) -> tuple[int, list[Problem]]:
    """Resolve every docs citation in ``files``; return how many were checked and the ones that failed."""
    skipped = {p.resolve() for p in skip}
    heading_cache: dict[Path, list[str] | None] = {}

    def headings_of(target: Path) -> list[str] | None:
        if target not in heading_cache:
            text = _read(target) if target.is_file() else None
            heading_cache[target] = None if text is None else headings(text)
        return heading_cache[target]

    checked, problems = 0, []
    for path in files:
        if path.resolve() in skipped:
            continue
        text = _read(path)
        if text is None:
            continue
        rel = path.relative_to(root).as_posix()
        for lineno, line in enumerate(text.splitlines(), start=1):
            where = f"{rel}:{lineno}"
            first = _CITATION.search(line)
            orphan = _SECTION.search(line, 0, first.start() if first else len(line))
            if orphan and path.suffix != ".md":
                section = line[orphan.start() :].strip()
                problems.append(Problem(where, section, "names a section but no docs file on its line (wrapped?)"))
            for match in _CITATION.finditer(line):
                checked += 1
                cited = match.group(0)
                known = headings_of(root / cited)
                if known is None:
                    problems.append(Problem(where, cited, "names a file that is not in the repository"))
                    continue
                following = _CITATION.search(line, match.end())
                stop = following.start() if following else len(line)
                for section in _SECTION.finditer(line, match.end(), stop):
                    after = line[section.end() :]
                    if _match_heading(after, known) is None:
                        problems.append(Problem(where, f"{cited} §{after.strip()}", f"matches no heading of {cited}"))
            if path.suffix == ".md" and rel.startswith("docs/"):
                for link in _MD_LINK.finditer(line):
                    target = link.group(1)
                    if "://" in target:
                        continue
                    checked += 1
                    if not (path.parent / target).resolve().is_file():
                        problems.append(Problem(where, target, "is a relative link to a file that does not exist"))
    return checked, problems


def outside_citations(root: Path, files: Iterable[Path], *, skip: Iterable[Path] = ()) -> list[Problem]:
    """Every mention of a reference file that lives outside the repository."""
    skipped = {p.resolve() for p in skip}
    found = []
    for path in files:
        if path.resolve() in skipped:
            continue
        text = _read(path)
        if text is None:
            continue
        rel = path.relative_to(root).as_posix()
        for lineno, line in enumerate(text.splitlines(), start=1):
            for match in _OUTSIDE.finditer(line):
                found.append(Problem(f"{rel}:{lineno}", match.group(0), "is not in the repository; cite docs/ instead"))
    return found

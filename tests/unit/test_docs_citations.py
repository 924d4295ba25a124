"""Every citation of the repository's docs resolves, and nothing cites reference notes that live outside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import doc_citations
from tests.support.doc_citations import check_citations, headings, outside_citations, scanned_files

ROOT = Path(__file__).resolve().parents[2]
# The checker and this test spell out the forbidden names and example citations on purpose.
SELF = (Path(__file__), Path(doc_citations.__file__))


def test_every_docs_citation_resolves_to_a_file_and_heading() -> None:
    checked, problems = check_citations(ROOT, scanned_files(ROOT), skip=SELF)
    assert not problems, "unresolved docs citations:\n" + "\n".join(map(str, problems))
    assert checked > 0, "no docs citation found at all: the scanner is looking in the wrong place"


def test_nothing_cites_reference_notes_outside_the_repository() -> None:
    found = outside_citations(ROOT, scanned_files(ROOT), skip=SELF)
    assert not found, "citations of files outside the repository:\n" + "\n".join(map(str, found))


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


FACTS = "# Facts\n\n## Spot allOrders\n\ntext\n\n## Spot allOrderList\n\n```\n## not a heading\n```\n\n## Retention\n"


def test_headings_skip_fenced_code() -> None:
    assert headings(FACTS) == ["Facts", "Spot allOrders", "Spot allOrderList", "Retention"]


def test_a_good_citation_with_chained_sections_resolves(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "docs/facts.md": FACTS,
            "pipeline/a.py": "# 24 h windows (docs/facts.md §Spot allOrderList, §Retention): see there\n",
            "assets/b.py": "# docs/facts.md § Spot allOrders (and § Retention); docs/facts.md §Retention\n",
            "README.md": "Details in docs/facts.md.\n",
        },
    )
    checked, problems = check_citations(root, scanned_files(root))
    assert (checked, problems) == (4, [])


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("# docs/missing.md §Retention\n", "not in the repository"),
        ("# docs/facts.md §Spot allorders\n", "matches no heading"),  # case matters
        ("# docs/facts.md §Retentions\n", "matches no heading"),  # a heading must end at a word boundary
        ("# docs/facts.md §Retention, §Nowhere\n", "matches no heading"),  # every chained section is checked
        ("# docs/facts.md § Spot allOrders (and § Nowhere)\n", "matches no heading"),
        ("# docs/facts.md §Retention; docs/missing.md\n", "not in the repository"),
        ("# see docs/facts.md\n# §Retention\n", "no docs file on its line"),  # a citation wrapped across lines
    ],
)
def test_a_bad_citation_is_reported_with_its_place(tmp_path: Path, source: str, reason: str) -> None:
    root = _tree(tmp_path, {"docs/facts.md": FACTS, "assets/b.py": source})
    _, problems = check_citations(root, scanned_files(root))
    assert len(problems) == 1
    assert problems[0].where == f"assets/b.py:{source.count(chr(10))}"
    assert reason in problems[0].reason


def test_relative_links_between_docs_are_checked(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "docs/facts.md": FACTS,
            "docs/README.md": "[facts](facts.md) [budget](design/budget.md#why) [web](https://x.org/a.md)\n",
        },
    )
    _, problems = check_citations(root, scanned_files(root))
    assert [p.cited for p in problems] == ["design/budget.md"]


@pytest.mark.parametrize("name", doc_citations.OUTSIDE_FILES)
def test_outside_reference_notes_are_found(tmp_path: Path, name: str) -> None:
    root = _tree(
        tmp_path,
        {
            "pipeline/c.py": f"# see {name} §3\n",
            "docs/d.md": f"A repository file with the same name, docs/{name}, is not an outside note.\n",
        },
    )
    found = outside_citations(root, scanned_files(root))
    assert [(p.where, p.cited) for p in found] == [("pipeline/c.py:1", name)]

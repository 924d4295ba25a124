"""`orderlake exports` on a data dir that never requested an export: looking creates nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from assets.cli import main
from pipeline.exports.ledger import ExportLedger, ledger_path
from pipeline.settings import Settings
from tests.support.exports import attempt


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


def test_list_on_an_empty_data_dir_prints_no_rows_and_creates_nothing(tmp_path: Path, capsys) -> None:
    assert main(["exports", "list"], Settings(data_dir=tmp_path)) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "(0 rows)"
    assert _files(tmp_path) == []


@pytest.mark.parametrize("command", [["resolve", "1"], ["reingest", "1"]])
def test_settling_without_a_ledger_says_where_it_looked_and_creates_nothing(tmp_path: Path, capsys, command) -> None:
    assert main(["exports", *command], Settings(data_dir=tmp_path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(ledger_path(tmp_path)) in err[0] and "never requested an export" in err[0]
    assert _files(tmp_path) == []


def test_an_existing_ledger_is_listed(tmp_path: Path, capsys) -> None:
    entry = attempt(ExportLedger(tmp_path))
    assert main(["exports", "list"], Settings(data_dir=tmp_path)) == 0
    rows = [[c.strip() for c in line.split("|")] for line in capsys.readouterr().out.splitlines()]
    assert [r[4] for r in rows if r[0] == str(entry.id)] == ["attempted"]

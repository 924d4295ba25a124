"""The local budget state is the user's own (issue 11 item 6): a per-user directory with mode 0700, its owner
checked, and files opened without following symlinks, so another local user can neither make a backfill write
through a planted link nor stop it with a fake ban."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from pipeline.binance.budget import WeightBudget
from pipeline.binance.budget_store import FileStore, open_store
from pipeline.errors import ConfigurationError
from pipeline.settings import Settings, default_budget_dir


def _budget(directory: Path) -> WeightBudget:
    return WeightBudget("spot", "api.binance.com", directory, now_ms=lambda: 1_000_000, sleep=lambda s: None)


def test_the_default_directory_is_per_user_and_never_the_shared_temp_dir(tmp_path: Path) -> None:
    runtime = tmp_path / "run-user-1000"
    assert default_budget_dir({"XDG_RUNTIME_DIR": str(runtime)}) == runtime / "orderlake-budget"
    assert default_budget_dir({"XDG_CACHE_HOME": str(tmp_path / "cache")}) == tmp_path / "cache/orderlake/budget"
    home = Path(os.path.expanduser("~"))
    assert default_budget_dir({"XDG_RUNTIME_DIR": "relative"}) == home / ".cache/orderlake/budget"
    assert Settings.from_env({}).budget_dir == default_budget_dir()


def test_the_directory_is_created_0700_and_state_files_0600(tmp_path: Path) -> None:
    directory = tmp_path / "cache" / "orderlake" / "budget"
    budget = _budget(directory)
    budget.reserve(10)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(budget.path.stat().st_mode) == 0o600
    assert json.loads(budget.path.read_text())["windows"]


def test_a_symlinked_state_file_is_never_written_through(tmp_path: Path) -> None:
    """The attack: another user plants budget-dir/<key>.json -> a file the victim owns; the backfill must refuse,
    and the target must keep its bytes."""
    directory = tmp_path / "budget"
    directory.mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    _budget(directory).path.symlink_to(victim)
    with pytest.raises(ConfigurationError, match=r"symlink.*never follows"):
        _budget(directory).reserve(10)
    with pytest.raises(ConfigurationError, match="symlink"):
        _budget(directory).block(2_000_000, "418", "fake ban")
    assert victim.read_text() == "precious"


def test_a_symlinked_learn_lock_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "budget"
    directory.mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    FileStore(directory).path("spot@api.binance.com", ".learn.lock").symlink_to(victim)
    with pytest.raises(ConfigurationError, match="symlink"):
        _budget(directory).ensure_limits(lambda: [])
    assert victim.read_text() == "precious"


def test_a_symlinked_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    link = tmp_path / "budget"
    link.symlink_to(real)
    with pytest.raises(ConfigurationError, match="symlink or not a directory"):
        FileStore(link)


def test_a_directory_of_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "budget"
    directory.mkdir(mode=0o700)
    monkeypatch.setattr(os, "geteuid", lambda: directory.stat().st_uid + 1)
    with pytest.raises(ConfigurationError, match=r"belongs to uid \d+, not to you"):
        open_store(None, directory)


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770])
def test_a_directory_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    """/tmp/orderlake-budget of old (world-writable, sticky) included: others could plant files in it."""
    directory = tmp_path / "budget"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(ConfigurationError, match="writable by other users"):
        FileStore(directory)
    assert not list(directory.iterdir())


def test_an_explicit_directory_of_ones_own_is_accepted(tmp_path: Path) -> None:
    directory = tmp_path / "shared-by-my-processes"
    directory.mkdir(mode=0o755)
    _budget(directory).reserve(5)
    assert _budget(directory).snapshot()["windows"]["60000"] == {"16": 5}

"""The export ledger's life cycle: every legal move works, every other one is refused, old ledgers still load."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

from pipeline.exports.ledger import ExportLedger, LedgerEntry
from pipeline.exports.states import TRANSITIONS, IllegalTransition, LedgerState
from tests.support.exports import attempt

PAIRS = list(itertools.product(LedgerState, LedgerState))
LEGAL = [(a, b) for a, b in PAIRS if b in TRANSITIONS[a]]
ILLEGAL = [(a, b) for a, b in PAIRS if b not in TRANSITIONS[a]]


def _entry_in(ledger: ExportLedger, state: LedgerState) -> LedgerEntry:
    entry = attempt(ledger, now_ms=1_000)
    with sqlite3.connect(ledger.path) as con:  # put it straight into the state under test
        con.execute("UPDATE entries SET status = ? WHERE id = ?", (str(state), entry.id))
    return ledger.get(entry.id)


def test_the_stored_values_are_the_historical_strings() -> None:
    assert [str(s) for s in LedgerState] == [
        "attempted",
        "unknown",
        "processing",
        "completed",
        "retrieved",
        "ingested",
        "error",
        "expired",
        "failed",
        "released",
    ]
    assert set(TRANSITIONS) == set(LedgerState)


@pytest.mark.parametrize(("current", "new"), LEGAL, ids=[f"{a}->{b}" for a, b in LEGAL])
def test_every_legal_transition_works(tmp_path: Path, current: LedgerState, new: LedgerState) -> None:
    ledger = ExportLedger(tmp_path)
    entry = _entry_in(ledger, current)
    after = ledger.update(entry.id, 2_000, "test_move", status=new)
    assert after.status is new and ledger.get(entry.id).status is new
    assert ledger.events(entry.id)[-1]["event"] == "test_move"


@pytest.mark.parametrize(("current", "new"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_every_illegal_transition_is_refused(tmp_path: Path, current: LedgerState, new: LedgerState) -> None:
    ledger = ExportLedger(tmp_path)
    entry = _entry_in(ledger, current)
    events = len(ledger.events(entry.id))
    with pytest.raises(IllegalTransition) as info:
        ledger.update(entry.id, 2_000, "test_move", status=new, error="must not be written")
    assert f"from {str(current)!r} to {str(new)!r}" in str(info.value) and f"#{entry.id}" in str(info.value)
    after = ledger.get(entry.id)
    assert (after.status, after.error) == (current, None)  # nothing written, not even the other fields
    assert len(ledger.events(entry.id)) == events


def test_a_status_that_is_no_state_is_refused(tmp_path: Path) -> None:
    ledger = ExportLedger(tmp_path)
    entry = _entry_in(ledger, LedgerState.PROCESSING)
    with pytest.raises(IllegalTransition, match="'done' is not a ledger state"):
        ledger.update(entry.id, 2_000, "poll", status="done")


def test_updates_without_a_status_are_not_transitions(tmp_path: Path) -> None:
    ledger = ExportLedger(tmp_path)
    entry = _entry_in(ledger, LedgerState.EXPIRED)  # final, yet its other fields may still change
    assert ledger.update(entry.id, 2_000, "note", error="checked by hand").error == "checked by hand"

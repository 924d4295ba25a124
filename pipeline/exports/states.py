"""The life cycle of an export ledger entry: its states and the only moves between them.

The values are the strings the ledger's SQLite ``status`` column has always held, so existing ledgers load
unchanged. :meth:`pipeline.exports.ledger.ExportLedger.update` refuses any move the table does not list.
"""

from __future__ import annotations

from enum import StrEnum

from pipeline.exports.errors import ExportStateError


class LedgerState(StrEnum):
    ATTEMPTED = "attempted"  # attempt row written; the create call is (or was) in flight
    UNKNOWN = "unknown"  # the create call ended without a usable answer: an id may exist; a person settles it
    PROCESSING = "processing"  # a download id exists; Binance is generating the file
    COMPLETED = "completed"  # the link is ready
    RETRIEVED = "retrieved"  # the raw file is stored
    INGESTED = "ingested"  # the file's rows are in the lake
    ERROR = "error"  # Binance answered an undocumented status; a person settles it
    EXPIRED = "expired"  # the link expired before the file was stored: the range needs a new id
    FAILED = "failed"  # Binance refused the create call (4xx, quota): no id was made
    RELEASED = "released"  # a person confirmed no id was made for an unknown attempt


_S = LedgerState
TRANSITIONS: dict[LedgerState, frozenset[LedgerState]] = {
    _S.ATTEMPTED: frozenset({_S.PROCESSING, _S.UNKNOWN, _S.FAILED, _S.RELEASED}),
    # a late answer to the create call (an id, a refusal, another failure), or a person with or without an id
    _S.UNKNOWN: frozenset({_S.PROCESSING, _S.FAILED, _S.UNKNOWN, _S.RELEASED}),
    _S.PROCESSING: frozenset({_S.COMPLETED, _S.ERROR}),
    # stored again (the raw file is re-adopted or re-downloaded), or the link ran out before that
    _S.COMPLETED: frozenset({_S.RETRIEVED, _S.EXPIRED}),
    _S.RETRIEVED: frozenset({_S.RETRIEVED, _S.INGESTED, _S.EXPIRED}),
    _S.INGESTED: frozenset({_S.INGESTED, _S.EXPIRED}),
    _S.ERROR: frozenset({_S.PROCESSING, _S.RELEASED}),
    _S.EXPIRED: frozenset(),
    _S.FAILED: frozenset(),
    _S.RELEASED: frozenset(),
}
# Their range is never requested again automatically.
BLOCKING: tuple[LedgerState, ...] = (
    _S.ATTEMPTED,
    _S.UNKNOWN,
    _S.PROCESSING,
    _S.COMPLETED,
    _S.RETRIEVED,
    _S.INGESTED,
    _S.ERROR,
)
NEEDS_A_PERSON: tuple[LedgerState, ...] = (_S.UNKNOWN, _S.ATTEMPTED, _S.ERROR)  # resolve_unknown settles these
READY: tuple[LedgerState, ...] = (_S.COMPLETED, _S.RETRIEVED, _S.INGESTED)  # a file exists for the range
IN_FLIGHT: tuple[LedgerState, ...] = (_S.ATTEMPTED, _S.UNKNOWN, _S.PROCESSING, _S.COMPLETED, _S.RETRIEVED)


class IllegalTransition(ExportStateError):
    """An update asked for a move the life cycle does not allow (a bug, or two processes racing)."""


def check_transition(entry: str, current: str, new: str, event: str) -> LedgerState:
    """``new`` as a state, if ``current`` may move to it; else one clear error naming both states."""
    try:
        target = LedgerState(new)
    except ValueError:
        raise IllegalTransition(
            f"export {entry}: {str(new)!r} is not a ledger state (one of {', '.join(LedgerState)}); event {event}"
        ) from None
    allowed = TRANSITIONS[LedgerState(current)]
    if target not in allowed:
        options = ", ".join(sorted(allowed)) or "none, it is final"
        raise IllegalTransition(
            f"export {entry}: cannot move from {str(current)!r} to {str(target)!r} ({event}); from "
            f"{str(current)!r} it may move to: {options}. Nothing was written."
        )
    return target

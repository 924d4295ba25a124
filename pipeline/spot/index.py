"""The symbol activity index: which spot symbols hold orders, from when to when, and how we know.

Persisted at ``$ORDERLAKE_DATA_DIR/state/spot_symbols.json``, written atomically under a file lock and merged with
concurrent writers (:meth:`SymbolIndex.save`), one section per account stamped with its identity: another identity
finds it empty (:mod:`pipeline.identity`). It is a cache of *evidence*, never of order rows: losing it costs one
re-probe, not data.

Why it exists: spot ``allOrders`` needs a symbol, so without it every run would have to ask every listed symbol
for every day (docs/design/spot-planner.md §The problem). With it the planner can skip symbols that cannot have
orders in a window and choose between 24 h windows and an orderId cursor per symbol.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from filelock import FileLock

from pipeline import identity
from pipeline.spot.common import TERMINAL_LIST_STATUSES, TERMINAL_STATUSES
from pipeline.storage.atomic import atomic_write

INDEX_VERSION = 1
STAMP = "identity"  # a section's key: the identity scope it belongs to (absent: written before identities)
EVIDENCE_KINDS = ("balance", "lake", "explicit", "probe", "fetch")


@dataclass
class SymbolActivity:
    """What we know about one symbol's order history.

    ``known_through`` is the moment up to which first/last/count describe the complete history (the time of the
    probe or full cursor scan that produced them). Orders placed or updated after it are unknown.
    ``count_exact`` is False when ``order_count`` is only a lower bound (e.g. the probe page was full).
    ``settled_below_id`` / ``settled_max_update``: every order with orderId < settled_below_id had reached a
    terminal status at ``known_through`` and none was updated after ``settled_max_update``; a later cursor over a
    range starting after ``settled_max_update`` may start there instead of at the first order.
    """

    symbol: str
    status: str = "unknown"  # listed | delisted | unknown
    evidence: list[str] = field(default_factory=list)
    base_asset: str | None = None
    quote_asset: str | None = None
    probed_at: int | None = None
    known_through: int | None = None
    first_order_id: int | None = None
    first_order_time: int | None = None
    last_order_id: int | None = None
    last_order_time: int | None = None
    last_update_time: int | None = None
    order_count: int | None = None
    count_exact: bool = False
    scanned_to_time: int | None = None  # creation time of the newest order the contiguous scan reached
    has_open: bool | None = None
    settled_below_id: int | None = None
    settled_count: int | None = None
    settled_max_update: int | None = None
    blind_spot: str | None = None  # e.g. "bad_symbol: -1121 (delisted, history unreachable through the API)"

    def add_evidence(self, kind: str) -> None:
        if kind not in self.evidence:
            self.evidence.append(kind)

    @property
    def evidence_beyond_probe(self) -> bool:
        """Balances, the lake or the explicit list name this symbol (not just a probe or a fetch)."""
        return bool(set(self.evidence) & {"balance", "lake", "explicit"})

    @property
    def has_orders(self) -> bool | None:
        """True/False when known, None when nobody has looked."""
        if self.order_count is not None:
            return self.order_count > 0
        return None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SymbolActivity:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class ListActivity:
    """Same idea for order lists (allOrderList has no symbol: one history for the whole account)."""

    probed_at: int | None = None
    known_through: int | None = None
    first_id: int | None = None
    first_time: int | None = None
    last_id: int | None = None
    last_time: int | None = None
    count: int | None = None
    count_exact: bool = False
    has_open: bool | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ListActivity:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class SymbolIndex:
    """Symbol activity index for one account (see module docstring)."""

    account: str
    path: Path | None = None
    symbols: dict[str, SymbolActivity] = field(default_factory=dict)
    order_lists: ListActivity = field(default_factory=ListActivity)
    listed_count: int | None = None
    exchange_info_at: int | None = None
    weight_per_minute: float | None = None
    full_probe_started_at: int | None = None
    full_probe_completed_at: int | None = None
    full_probe_weight: int = 0
    blind_spots: list[dict[str, Any]] = field(default_factory=list)  # of the last backfill, for `orderlake status`
    _base: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)  # as loaded/saved

    # -- persistence -------------------------------------------------------------------------------------------
    @staticmethod
    def default_path(data_dir: Path | str) -> Path:
        return Path(data_dir) / "state" / "spot_symbols.json"

    @classmethod
    def load(cls, data_dir: Path | str, account: str) -> SymbolIndex:
        """Load the index for ``account`` (empty index if the file or the account's section is missing, or if the
        section is another identity's). The file holds one section per account so several share a data dir."""
        index = cls(account=account, path=cls.default_path(data_dir))
        index._adopt(index._own(_read(index.path).get("accounts", {}).get(account) or {}))
        return index

    def _own(self, section: dict[str, Any]) -> dict[str, Any]:
        """``section`` if it belongs to this account's recorded identity, else an empty one."""
        scope = identity.owner(self.path.parents[1], self.account) if self.path is not None else None
        return section if identity.owns(section.get(STAMP), scope) else {}

    def _adopt(self, section: dict[str, Any]) -> None:
        """Take a saved section's values, updating the objects in place (callers may hold a SymbolActivity)."""
        for sym, data in section.get("symbols", {}).items():
            if sym in self.symbols:
                _set_fields(self.symbols[sym], data)
            else:
                self.symbols[sym] = SymbolActivity.from_dict(data)
        _set_fields(self.order_lists, section.get("order_lists", {}))
        _set_fields(self, {k: v for k, v in section.items() if k in _SCALARS})
        self._base = copy.deepcopy(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            **{key: getattr(self, key) for key in _SCALARS},
            "order_lists": asdict(self.order_lists),
            "symbols": {s: asdict(a) for s, a in sorted(self.symbols.items())},
        }

    def save(self) -> Path:
        """Write this account's section, atomically and under a file lock, merged with what other processes saved
        since this index was loaded: what THIS process changed wins, every other field keeps the file's value, so
        concurrent runs never drop each other's discoveries. Other accounts' sections are preserved."""
        if self.path is None:
            raise ValueError("SymbolIndex has no path; use SymbolIndex.load(data_dir, account)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(self.path.with_name(self.path.name + ".lock")):
            doc = _read(self.path)
            theirs = self._own(doc.get("accounts", {}).get(self.account) or {})  # another identity's: replaced
            merged = _merge_section(self._base, self.to_dict(), theirs)
            scope = identity.owner(self.path.parents[1], self.account)
            if scope is not None:
                merged[STAMP] = scope
            doc["version"] = INDEX_VERSION
            doc.setdefault("accounts", {})[self.account] = merged
            atomic_write(self.path, json.dumps(doc, indent=1, sort_keys=True))
        self._adopt(merged)
        return self.path

    # -- queries -----------------------------------------------------------------------------------------------
    def get(self, symbol: str) -> SymbolActivity:
        if symbol not in self.symbols:
            self.symbols[symbol] = SymbolActivity(symbol=symbol)
        return self.symbols[symbol]

    def with_evidence(self, *kinds: str) -> list[str]:
        return sorted(s for s, a in self.symbols.items() if set(a.evidence) & set(kinds))

    # -- learning from rows ------------------------------------------------------------------------------------
    def record_scan(
        self,
        symbol: str,
        rows: list[dict],
        *,
        complete: bool,
        from_start: bool,
        scanned_at: int,
        start_id: int | None = None,
        prior_count: int = 0,
    ) -> None:
        """Learn from an ascending-orderId scan of ``symbol``.

        complete: the scan reached the newest order (last page shorter than the limit).
        from_start: the scan began at the very first order (orderId 0/1 or the known first order), so counts are
        absolute; otherwise ``prior_count`` orders (those below ``start_id``) are added.
        """
        act = self.get(symbol)
        if rows:
            first, last = rows[0], rows[-1]
            if from_start or act.first_order_id is None:
                act.first_order_id, act.first_order_time = first["orderId"], first["time"]
            max_update = max(r["updateTime"] for r in rows)
            if act.last_order_id is None or last["orderId"] >= act.last_order_id:
                act.last_order_id, act.last_order_time = last["orderId"], last["time"]
            act.last_update_time = max(act.last_update_time or 0, max_update)
        elif from_start and complete:
            act.first_order_id = act.first_order_time = None
            act.last_order_id = act.last_order_time = act.last_update_time = None
        # A scan from the settled checkpoint knows everything below it is terminal, so it is as good as one from
        # the start for has_open and for moving the checkpoint on.
        whole = from_start or (start_id is not None and start_id == act.settled_below_id)
        base_count = 0 if from_start else prior_count
        if complete:
            act.order_count = len(rows) + base_count
            act.count_exact = True
            act.known_through = act.scanned_to_time = scanned_at
            if whole:
                act.has_open = any(r["status"] not in TERMINAL_STATUSES for r in rows)
        elif not act.count_exact or (act.order_count or 0) < len(rows) + base_count:
            act.order_count = max(act.order_count or 0, len(rows) + base_count)
            act.count_exact = False
            if rows and (whole or from_start):
                act.scanned_to_time = max(act.scanned_to_time or 0, rows[-1]["time"])
        if from_start:
            self._settle(act, rows, base_count=0)
        elif whole:
            self._settle(act, rows, base_count=act.settled_count or 0, base_max=act.settled_max_update)
        act.probed_at = act.probed_at or scanned_at

    @staticmethod
    def _settle(act: SymbolActivity, rows: list[dict], *, base_count: int, base_max: int | None = None) -> None:
        """Advance the settled checkpoint over the leading run of terminal orders."""
        n, max_update, below = 0, base_max, None
        for r in rows:
            if r["status"] not in TERMINAL_STATUSES:
                below = r["orderId"]
                break
            n += 1
            max_update = max(max_update or 0, r["updateTime"])
        if below is None:
            below = (rows[-1]["orderId"] + 1) if rows else None
        if below is None or max_update is None:
            return
        if act.settled_below_id is None or below >= act.settled_below_id:
            act.settled_below_id, act.settled_count, act.settled_max_update = below, base_count + n, max_update

    def record_window_rows(self, symbol: str, rows: Iterable[dict]) -> None:
        """Windows only show a slice of history: they can raise last/lower bounds, never prove absence."""
        act = self.get(symbol)
        for r in rows:
            act.last_update_time = max(act.last_update_time or 0, r["updateTime"])
            if act.last_order_id is None or r["orderId"] > act.last_order_id:
                act.last_order_id, act.last_order_time = r["orderId"], r["time"]
            # first_order_* deliberately untouched: a window shows a slice, an older order may exist outside it,
            # and the planner uses first_order_time to skip days
            if r["status"] not in TERMINAL_STATUSES:
                act.has_open = True
        act.add_evidence("fetch")

    def record_list_scan(self, rows: list[dict], *, complete: bool, from_start: bool, scanned_at: int) -> None:
        lst = self.order_lists
        if rows:
            if from_start or lst.first_id is None:
                lst.first_id, lst.first_time = rows[0]["orderListId"], rows[0]["transactionTime"]
            lst.last_id = max(lst.last_id or 0, rows[-1]["orderListId"])
            lst.last_time = max(lst.last_time or 0, max(r["transactionTime"] for r in rows))
        if complete and from_start:
            lst.count, lst.count_exact, lst.known_through = len(rows), True, scanned_at
            lst.has_open = any(r.get("listOrderStatus") not in TERMINAL_LIST_STATUSES for r in rows)
        elif from_start:
            lst.count, lst.count_exact = max(lst.count or 0, len(rows)), False
        lst.probed_at = lst.probed_at or scanned_at


_SCALARS = (
    "listed_count",
    "exchange_info_at",
    "weight_per_minute",
    "full_probe_started_at",
    "full_probe_completed_at",
    "full_probe_weight",
    "blind_spots",
)


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def _set_fields(target: Any, data: dict[str, Any]) -> None:
    names = {f.name for f in fields(target)}
    for key, value in data.items():
        if key in names:
            setattr(target, key, copy.deepcopy(value))


def _merge_fields(base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Three-way merge of flat records: a field this process changed since ``base`` takes ours, any other the
    file's (``theirs``) value."""
    return {**theirs, **{k: v for k, v in ours.items() if k not in theirs or v != base.get(k)}}


def _merge_section(base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    out = _merge_fields(base, {k: v for k, v in ours.items() if k in _SCALARS}, theirs)
    out["order_lists"] = _merge_fields(base.get("order_lists", {}), ours["order_lists"], theirs.get("order_lists", {}))
    symbols = dict(theirs.get("symbols", {}))
    for sym, act in ours["symbols"].items():
        saved = symbols.get(sym, {})
        merged = _merge_fields(base.get("symbols", {}).get(sym, {}), act, saved)
        merged["evidence"] = list(dict.fromkeys([*saved.get("evidence", []), *act["evidence"]]))  # evidence only grows
        symbols[sym] = merged
    out["symbols"] = dict(sorted(symbols.items()))
    return out

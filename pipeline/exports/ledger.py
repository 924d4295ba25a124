"""The export ledger: the only place that knows which download ids (scarce quota) were spent, and on what.

SQLite under ``$ORDERLAKE_DATA_DIR/state/export_ledger.sqlite`` (WAL, ``synchronous=FULL``): an attempt row is on
disk before its create call goes out, and every read-check-write runs in ``BEGIN IMMEDIATE``, so two processes never
both reserve the same range or the month's last id. States and transitions: :mod:`pipeline.exports.states`. Quota
counts per UTC month of ``requested_at`` and (market, kind, account). An account's rows are stamped with its
identity (:func:`pipeline.identity.owner`) and it sees only its own. Design: docs/design/ledger.md.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

from pipeline import identity
from pipeline.exports.errors import ExportStateError, QuotaWouldBeExceeded
from pipeline.exports.planning import covered_days
from pipeline.exports.states import BLOCKING, NEEDS_A_PERSON, LedgerState, check_transition
from pipeline.times import day_end_ms, day_of, day_start_ms, days_between, fmt_ms, month_of, next_month_start_ms
from pipeline.times import now_ms as wall_now_ms

LEDGER_FILE = "export_ledger.sqlite"
SCHEMA_VERSION = 4


def ledger_path(data_dir: str | os.PathLike[str]) -> Path:
    """Where a data dir's ledger lives (opening an :class:`ExportLedger` creates it; reading this does not)."""
    return Path(data_dir) / "state" / LEDGER_FILE


_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    market          TEXT    NOT NULL,     -- "usdm" | "pm_um"
    kind            TEXT    NOT NULL,     -- "order" (later "trade", "income")
    api             TEXT    NOT NULL,     -- limiter group: "futures" | "papi"
    account         TEXT    NOT NULL,
    start_ms        INTEGER NOT NULL,     -- inclusive, UTC ms (a day's 00:00:00.000)
    end_ms          INTEGER NOT NULL,     -- inclusive, UTC ms (a day's 23:59:59.999)
    requested_at    INTEGER NOT NULL,     -- when the attempt row was written, just before the create call
    quota_month     TEXT    NOT NULL,     -- "YYYY-MM" (UTC) of requested_at
    counts_quota    INTEGER NOT NULL DEFAULT 1,
    status          TEXT    NOT NULL,
    download_id     TEXT    UNIQUE,
    avg_cost_ms     INTEGER,              -- avgCostTimestampOfLast30d (unit UNCONFIRMED, assumed ms)
    created_at      INTEGER,              -- when the downloadId came back
    polls           INTEGER NOT NULL DEFAULT 0,   -- polls that answered "processing"
    poll_failures   INTEGER NOT NULL DEFAULT 0,   -- consecutive failed poll calls
    last_polled_at  INTEGER,
    last_poll_status TEXT,
    next_poll_at    INTEGER,
    url             TEXT,                 -- pre-signed link; cleared once the raw file is stored
    url_where       TEXT,                 -- host + path only (safe to show)
    url_expires_at  INTEGER,              -- expirationTimestamp
    completed_at    INTEGER,
    raw_path        TEXT,                 -- relative to the data dir
    size            INTEGER,
    sha256          TEXT,
    retrieved_at    INTEGER,
    rows            INTEGER,              -- rows written to the lake (after dedupe / out-of-range drop)
    data_lines      INTEGER,              -- data lines in the file (independent line count)
    partitions      TEXT,                 -- JSON {"YYYY-MM-DD": rows}
    ingested_at     INTEGER,
    error           TEXT,
    updated_at      INTEGER NOT NULL,
    parsed_rows     INTEGER,              -- rows the CSV reader produced (must equal data_lines)
    utc_offset_minutes INTEGER,           -- offset the export's local times were converted from
    file_name       TEXT,                 -- the file's name as served (may carry "(UTC+8)"); raw/ renames it
    offset_source   TEXT,                 -- where utc_offset_minutes came from (proven, configured, a label)
    content_length  INTEGER,              -- the Content-Length the file server declared (checked on download)
    identity        TEXT                  -- the account's identity scope (pipeline/identity.py); NULL: not known yet
);
CREATE INDEX IF NOT EXISTS entries_scope ON entries (market, kind, account, status);
CREATE TABLE IF NOT EXISTS events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id  INTEGER,
    at        INTEGER NOT NULL,
    event     TEXT    NOT NULL,
    detail    TEXT                         -- JSON
);
CREATE INDEX IF NOT EXISTS events_entry ON events (entry_id);
CREATE TABLE IF NOT EXISTS quota_blocks (  -- Binance said "quota exhausted" for this month: stop asking
    market  TEXT NOT NULL, kind TEXT NOT NULL, account TEXT NOT NULL, month TEXT NOT NULL,
    at      INTEGER NOT NULL, message TEXT,
    identity        TEXT,
    PRIMARY KEY (market, kind, account, month)
);
"""
# Version 1 -> 2: columns appended to ``entries`` (a v1 ledger holds spent download ids: migrate, never recreate).
_MIGRATE_V2 = (
    "ALTER TABLE entries ADD COLUMN parsed_rows INTEGER",
    "ALTER TABLE entries ADD COLUMN utc_offset_minutes INTEGER",
    "ALTER TABLE entries ADD COLUMN file_name TEXT",
)
# Version 2 -> 3: where the offset came from, and the declared size of the download.
_MIGRATE_V3 = (
    "ALTER TABLE entries ADD COLUMN offset_source TEXT",
    "ALTER TABLE entries ADD COLUMN content_length INTEGER",
)
# Version 3 -> 4: whose rows they are (rows from before are stamped at every open: docs/design/identity.md).
_MIGRATE_V4 = ("ALTER TABLE entries ADD COLUMN identity TEXT", "ALTER TABLE quota_blocks ADD COLUMN identity TEXT")
_MINE = "account = ? AND (identity IS NULL OR identity = ?)"  # pipeline.identity.owns, in SQL


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    market: str
    kind: str
    api: str
    account: str
    start_ms: int
    end_ms: int
    requested_at: int
    quota_month: str
    counts_quota: bool
    status: LedgerState
    download_id: str | None
    avg_cost_ms: int | None
    created_at: int | None
    polls: int
    poll_failures: int
    last_polled_at: int | None
    last_poll_status: str | None
    next_poll_at: int | None
    url: str | None = field(repr=False)  # pre-signed: keep it out of reprs and logs
    url_where: str | None
    url_expires_at: int | None
    completed_at: int | None
    raw_path: str | None
    size: int | None
    sha256: str | None
    retrieved_at: int | None
    rows: int | None
    data_lines: int | None
    partitions: dict[str, int] | None
    ingested_at: int | None
    error: str | None
    updated_at: int
    parsed_rows: int | None
    utc_offset_minutes: int | None
    file_name: str | None
    offset_source: str | None = None
    content_length: int | None = None
    identity: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> LedgerEntry:
        d = dict(row)
        d["counts_quota"] = bool(d["counts_quota"])
        d["status"] = LedgerState(d["status"])
        d["partitions"] = json.loads(d["partitions"]) if d["partitions"] else None
        return cls(**d)

    @property
    def range_text(self) -> str:
        return f"{day_of(self.start_ms).isoformat()}..{day_of(self.end_ms).isoformat()}"

    def describe(self) -> str:
        """One line for status output and messages."""
        did = self.download_id or "-"
        return (
            f"#{self.id} {self.market}/{self.kind} {self.account} {self.range_text} "
            f"downloadId={did} status={self.status}"
        )


@dataclass(frozen=True)
class QuotaStatus:
    market: str
    kind: str
    account: str
    month: str
    used: int
    limit: int
    unknown: int  # attempts of this month with unknown outcome (counted in `used`)
    blocked_by_binance: bool  # Binance answered "quota exhausted" this month
    resets_at_ms: int

    @property
    def remaining(self) -> int:
        return 0 if self.blocked_by_binance else max(self.limit - self.used, 0)


@dataclass(frozen=True)
class Reservation:
    """Outcome of :meth:`ExportLedger.reserve_attempt`: exactly one of the three fields is meaningful."""

    entry: LedgerEntry | None = None  # attempt row written; make the create call now
    covered_by: tuple[LedgerEntry, ...] = ()  # range already covered (or blocked): no call
    not_before_ms: int | None = None  # pacing: try again at this time


class ExportLedger:
    """Durable export ledger; safe across threads and processes (one short connection per operation)."""

    def __init__(self, data_dir: str | os.PathLike[str], *, busy_timeout_s: float = 30.0) -> None:
        self.data_dir = Path(data_dir)
        self.path = ledger_path(data_dir)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_s = busy_timeout_s
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            if con.execute("PRAGMA user_version").fetchone()[0] == 0:
                con.executescript(_SCHEMA)  # IF NOT EXISTS: harmless when another process does it at once
                con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        with self._tx() as con:  # BEGIN IMMEDIATE: exactly one process runs the migration
            version = con.execute("PRAGMA user_version").fetchone()[0]
            for since, statements in ((1, _MIGRATE_V2), (2, _MIGRATE_V3), (3, _MIGRATE_V4)):
                if version <= since < SCHEMA_VERSION:
                    for statement in statements:
                        con.execute(statement)
            if version < SCHEMA_VERSION:
                con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            for account, table in product(identity.accounts(self.data_dir), ("entries", "quota_blocks")):
                stamp = (identity.owner(self.data_dir, account), account)  # rows written before it was recorded
                con.execute(f"UPDATE {table} SET identity = ? WHERE identity IS NULL AND account = ?", stamp)

    def __repr__(self) -> str:
        return f"ExportLedger({str(self.path)!r})"

    def _mine(self, account: str) -> tuple[str, str | None]:
        """``account``'s rows: its own identity's, and those stamped before any identity was known."""
        return account, identity.owner(self.data_dir, account)

    # -- plumbing ---------------------------------------------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None)
        try:
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")
            con.execute("PRAGMA synchronous=FULL")
            yield con
        finally:
            con.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE), so read-check-write is atomic across processes."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    @staticmethod
    def _event(con: sqlite3.Connection, entry_id: int | None, at: int, event: str, **detail: Any) -> None:
        con.execute(
            "INSERT INTO events (entry_id, at, event, detail) VALUES (?, ?, ?, ?)",
            (entry_id, at, event, json.dumps(detail, default=str, sort_keys=True) if detail else None),
        )

    @staticmethod
    def _get(con: sqlite3.Connection, entry_id: int) -> LedgerEntry:
        row = con.execute("SELECT * FROM entries WHERE id = ?", (entry_id,)).fetchone()
        if row is None:
            raise ExportStateError(f"no export ledger entry #{entry_id}")
        return LedgerEntry.from_row(row)

    def update(
        self,
        entry_id: int,
        now_ms: int,
        event: str,
        *,
        detail: dict[str, Any] | None = None,
        expect_status: Iterable[str] | None = None,
        **fields: Any,
    ) -> LedgerEntry:
        """Set ``fields`` on an entry and append an event, atomically. ``partitions`` may be a dict. A ``status``
        must be a move the life cycle allows (:data:`pipeline.exports.states.TRANSITIONS`): anything else raises
        :class:`pipeline.exports.states.IllegalTransition` and writes nothing."""
        if "partitions" in fields and isinstance(fields["partitions"], dict):
            fields["partitions"] = json.dumps(fields["partitions"], sort_keys=True)
        if "counts_quota" in fields:
            fields["counts_quota"] = int(bool(fields["counts_quota"]))
        fields["updated_at"] = now_ms
        with self._tx() as con:
            current = self._get(con, entry_id)
            if expect_status is not None and current.status not in tuple(expect_status):
                raise ExportStateError(
                    f"export {current.describe()}: expected status {'/'.join(expect_status)} for {event}"
                )
            if "status" in fields:
                fields["status"] = str(check_transition(current.describe(), current.status, fields["status"], event))
            cols = ", ".join(f"{k} = ?" for k in fields)
            con.execute(f"UPDATE entries SET {cols} WHERE id = ?", (*fields.values(), entry_id))
            self._event(con, entry_id, now_ms, event, **(detail or {}))
            return self._get(con, entry_id)

    # -- reading ----------------------------------------------------------------------------------------------
    def entries(
        self,
        *,
        market: str | None = None,
        kind: str | None = None,
        account: str | None = None,
        status: str | Iterable[str] | None = None,
        download_id: str | None = None,
    ) -> list[LedgerEntry]:
        """Entries matching every given filter, oldest first."""
        where, args = [], []
        for col, val in (("market", market), ("kind", kind), ("download_id", download_id)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if account is not None:
            where.append(_MINE)
            args.extend(self._mine(account))
        if status is not None:
            statuses = (status,) if isinstance(status, str) else tuple(status)
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            args.extend(statuses)
        sql = "SELECT * FROM entries" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
        with self._connect() as con:
            return [LedgerEntry.from_row(r) for r in con.execute(sql, args)]

    def get(self, entry_id: int) -> LedgerEntry:
        with self._connect() as con:
            return self._get(con, entry_id)

    def by_download_id(self, download_id: str) -> LedgerEntry:
        found = self.entries(download_id=str(download_id))
        if not found:
            raise ExportStateError(f"download id {download_id} is not in the export ledger ({self.path})")
        return found[0]

    def events(self, entry_id: int | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM events", ()
        if entry_id is not None:
            sql, args = sql + " WHERE entry_id = ?", (entry_id,)
        with self._connect() as con:
            rows = [dict(r) for r in con.execute(sql + " ORDER BY id", args)]
        for r in rows:
            r["detail"] = json.loads(r["detail"]) if r["detail"] else {}
        return rows

    # -- quota ------------------------------------------------------------------------------------------------
    def _quota(
        self, con: sqlite3.Connection, market: str, kind: str, account: str, month: str, limit: int
    ) -> QuotaStatus:
        used, unknown = con.execute(
            "SELECT COUNT(*), COALESCE(SUM(status IN (?, ?)), 0) FROM entries "
            f"WHERE market = ? AND kind = ? AND {_MINE} AND quota_month = ? AND counts_quota = 1",
            (LedgerState.UNKNOWN, LedgerState.ATTEMPTED, market, kind, *self._mine(account), month),
        ).fetchone()
        blocked = (
            con.execute(
                f"SELECT 1 FROM quota_blocks WHERE market = ? AND kind = ? AND {_MINE} AND month = ?",
                (market, kind, *self._mine(account), month),
            ).fetchone()
            is not None
        )
        return QuotaStatus(
            market, kind, account, month, int(used), limit, int(unknown), blocked, next_month_start_ms(month)
        )

    def quota(self, market: str, kind: str, account: str, month: str, limit: int) -> QuotaStatus:
        with self._connect() as con:
            return self._quota(con, market, kind, account, month, limit)

    def record_quota_block(self, market: str, kind: str, account: str, now_ms: int, message: str) -> None:
        """Binance said the month's quota is exhausted (the website used some): no more create calls this month."""
        month = month_of(now_ms)
        with self._tx() as con:
            con.execute(
                "INSERT OR REPLACE INTO quota_blocks (market, kind, account, month, at, message, identity) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (market, kind, account, month, now_ms, message, identity.owner(self.data_dir, account)),
            )
            self._event(
                con,
                None,
                now_ms,
                "quota_exhausted_by_binance",
                market=market,
                kind=kind,
                account=account,
                month=month,
                message=message,
            )

    # -- the create-call protocol -----------------------------------------------------------------------------
    def expire_stale_attempts(self, now_ms: int, stale_ms: int) -> list[LedgerEntry]:
        """Attempts older than ``stale_ms`` never got an answer recorded (process died mid-call): -> unknown."""
        with self._tx() as con:
            rows = con.execute(
                "SELECT id FROM entries WHERE status = ? AND requested_at < ?",
                (LedgerState.ATTEMPTED, now_ms - stale_ms),
            ).fetchall()
            for (eid,) in rows:  # attempted -> unknown, a move the life cycle allows
                con.execute(
                    "UPDATE entries SET status = ?, error = ?, updated_at = ? WHERE id = ?",
                    (LedgerState.UNKNOWN, "the process stopped during the create call; outcome unknown", now_ms, eid),
                )
                self._event(con, eid, now_ms, "stale_attempt_unknown")
            return [self._get(con, eid) for (eid,) in rows]

    def reserve_attempt(
        self,
        *,
        market: str,
        kind: str,
        api: str,
        account: str,
        start_ms: int,
        end_ms: int,
        now_ms: int,
        limit: int,
        spacing_ms: int,
        failure_cooldown_ms: int,
    ) -> Reservation:
        """Atomically: check coverage, pacing and quota, then write the ``attempted`` row BEFORE the call.

        The range is trimmed to its first and last day that no blocking entry covers (another process may have
        reserved part of it since the caller planned); when every day is covered, nothing is reserved. Raises
        :class:`QuotaWouldBeExceeded` when one more id would exceed the month's limit (or Binance already said the
        quota is exhausted).
        """
        with self._tx() as con:
            blocking = [
                LedgerEntry.from_row(r)
                for r in con.execute(
                    f"SELECT * FROM entries WHERE market = ? AND kind = ? AND {_MINE} "
                    f"AND status IN ({', '.join('?' * len(BLOCKING))}) AND start_ms <= ? AND end_ms >= ?",
                    (market, kind, *self._mine(account), *BLOCKING, end_ms, start_ms),
                )
            ]
            first, last = day_of(start_ms), day_of(end_ms)
            covered = covered_days([(e.start_ms, e.end_ms) for e in blocking], first, last)
            uncovered = [d for d in days_between(first, last) if d not in covered]
            if not uncovered:
                return Reservation(covered_by=tuple(blocking))
            start_ms = max(start_ms, day_start_ms(uncovered[0]))
            end_ms = min(end_ms, day_end_ms(uncovered[-1]))
            last = con.execute(
                "SELECT requested_at, status FROM entries WHERE api = ? ORDER BY requested_at DESC LIMIT 1", (api,)
            ).fetchone()
            if last is not None:
                wait = failure_cooldown_ms if last["status"] == "failed" else spacing_ms
                if now_ms < last["requested_at"] + wait:
                    return Reservation(not_before_ms=last["requested_at"] + wait)
            q = self._quota(con, market, kind, account, month_of(now_ms), limit)
            if q.blocked_by_binance or q.used + 1 > limit:
                raise QuotaWouldBeExceeded(
                    market=market,
                    kind=kind,
                    account=account,
                    month=q.month,
                    used=q.used,
                    limit=limit,
                    needed=1,
                    resets_at_ms=q.resets_at_ms,
                    blocked_by_binance=q.blocked_by_binance,
                )
            who = identity.owner(self.data_dir, account)
            cur = con.execute(
                "INSERT INTO entries (market, kind, api, account, start_ms, end_ms, requested_at, quota_month, "
                "status, updated_at, identity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    market,
                    kind,
                    api,
                    account,
                    start_ms,
                    end_ms,
                    now_ms,
                    month_of(now_ms),
                    LedgerState.ATTEMPTED,
                    now_ms,
                    who,
                ),
            )
            eid = int(cur.lastrowid)
            self._event(con, eid, now_ms, "attempt", start_ms=start_ms, end_ms=end_ms)
            return Reservation(entry=self._get(con, eid))

    def record_created(
        self, entry_id: int, *, download_id: str, avg_cost_ms: int | None, now_ms: int, next_poll_at: int
    ) -> LedgerEntry:
        """IMMEDIATELY after a successful create call: the download id is the handle for the next days."""
        return self.update(
            entry_id,
            now_ms,
            "created",
            detail={"download_id": download_id, "avg_cost_ms": avg_cost_ms},
            expect_status=(LedgerState.ATTEMPTED, LedgerState.UNKNOWN),
            status=LedgerState.PROCESSING,
            download_id=str(download_id),
            avg_cost_ms=avg_cost_ms,
            created_at=now_ms,
            next_poll_at=next_poll_at,
            error=None,
        )

    # -- user resolution of unknown outcomes ------------------------------------------------------------------
    def resolve_unknown(
        self, entry_id: int, download_id: str | None = None, *, now_ms: int | None = None
    ) -> LedgerEntry:
        """Settle an ``unknown`` (or stuck ``attempted``/``error``) entry after checking the website.

        With ``download_id`` (found in Futures > Order History > download history): attach it; the entry goes back
        to ``processing`` and is polled at once. Without: the user confirmed no download was created; the range
        is released (it may be planned again) and the attempt no longer counts against the quota.
        """
        now = wall_now_ms() if now_ms is None else now_ms
        allowed = NEEDS_A_PERSON
        if download_id:
            return self.update(
                entry_id,
                now,
                "resolved_with_download_id",
                detail={"download_id": download_id},
                expect_status=allowed,
                status=LedgerState.PROCESSING,
                download_id=str(download_id),
                counts_quota=True,
                next_poll_at=now,
                polls=0,
                poll_failures=0,
                created_at=now,
                error=None,
            )
        return self.update(
            entry_id,
            now,
            "released_by_user",
            expect_status=allowed,
            status=LedgerState.RELEASED,
            counts_quota=False,
            error="released by the user: no download was created for this attempt",
        )

    # -- polling ----------------------------------------------------------------------------------------------
    def claim_due_polls(
        self,
        now_ms: int,
        lease_ms: int,
        *,
        market: str | None = None,
        kind: str | None = None,
        account: str | None = None,
    ) -> list[LedgerEntry]:
        """Open entries whose ``next_poll_at`` has passed, leased (next_poll_at pushed) so no one else polls them."""
        with self._tx() as con:
            where, args = ["status = ?", "COALESCE(next_poll_at, 0) <= ?"], [LedgerState.PROCESSING, now_ms]
            for col, val in (("market", market), ("kind", kind)):
                if val is not None:
                    where.append(f"{col} = ?")
                    args.append(val)
            if account is not None:
                where.append(_MINE)
                args.extend(self._mine(account))
            rows = con.execute(
                f"SELECT id FROM entries WHERE {' AND '.join(where)} ORDER BY next_poll_at", args
            ).fetchall()
            for (eid,) in rows:
                con.execute("UPDATE entries SET next_poll_at = ? WHERE id = ?", (now_ms + lease_ms, eid))
            return [self._get(con, eid) for (eid,) in rows]

    def next_poll_time(
        self, *, market: str | None = None, kind: str | None = None, account: str | None = None
    ) -> int | None:
        """Earliest next_poll_at of open entries (None when nothing is open)."""
        open_ = self.entries(market=market, kind=kind, account=account, status=LedgerState.PROCESSING)
        return min((e.next_poll_at or 0 for e in open_), default=None)


def describe_unknown_help(entry: LedgerEntry, data_dir: Path) -> str:
    """What a user must check after an unknown create outcome, and the two commands that settle it."""
    where = (
        "Binance website > Derivatives > Portfolio Margin > Order History > UM > Download history"
        if entry.market.startswith("pm")
        else "Binance website > Futures (USDⓈ-M) > Order History > Export / download history"
    )
    return (
        f"Export create call for {entry.market}/{entry.kind} range {entry.range_text} (ledger entry #{entry.id}, "
        f"sent at {fmt_ms(entry.requested_at)}) ended without a usable answer (timeout or 5xx): Binance may "
        "have created a download id and spent one of this month's ids. It will NOT be re-requested "
        "automatically; its range stays blocked. Check the " + where + " for an export of that range created "
        "around that time. If you find it, attach its download id: `orderlake exports resolve "
        f"{entry.id} --download-id <ID> --data-dir {data_dir}`; if there is none, release the range: "
        f"`orderlake exports resolve {entry.id} --data-dir {data_dir}` (Python: "
        f"ExportLedger(data_dir).resolve_unknown({entry.id}, download_id=None|'<ID>'))."
    )

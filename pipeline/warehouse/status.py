"""``orderlake status``: what is in the lake, what is missing, and what we KNOW we cannot see.

Reads only files (the lake directories and Parquet footers, the export ledger, the spot symbol index); it never
calls Binance and never needs the DuckDB catalog, so it works while a backfill is running and before the first
catalog build. Every source is optional: a missing or unreadable state file becomes a line in the report, never a
crash (this is the command people run when something is wrong).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline import identity
from pipeline.binance.facts import (
    EXPORT_MONTHLY_QUOTA,
    FUTURES_REST_RETENTION_DAYS,
    FUTURES_ZERO_FILL_RETENTION_DAYS,
    SPOT_ZERO_FILL_ARCHIVE_DAYS,
)
from pipeline.exports.states import IN_FLIGHT, LedgerState
from pipeline.spot import index
from pipeline.storage.schemas import spec_for
from pipeline.times import day_of, days_between, fmt_ms
from pipeline.trades.status import trades_section
from pipeline.warehouse.catalog import TABLES

EXPORT_MARKETS = {"usdm": "futures_orders", "pm_um": "pm_um_orders"}
LIST_LIMIT = 25  # lines per list before "... and N more"


# -- small helpers ------------------------------------------------------------------------------------------------
def ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days -> maximal runs of consecutive days [(first, last), ...]."""
    out: list[tuple[date, date]] = []
    for d in sorted(set(days)):
        if out and d == out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def fmt_ranges(runs: list[tuple[date, date]], limit: int = 8) -> str:
    parts = [a.isoformat() if a == b else f"{a}..{b} ({(b - a).days + 1} d)" for a, b in runs[:limit]]
    if len(runs) > limit:
        parts.append(f"... and {len(runs) - limit} more ranges")
    return ", ".join(parts)


def missing_days(present: set[date], start: date, end: date) -> list[date]:
    return [d for d in days_between(start, end) if d not in present]


def _more(lines: list[str], total: int, indent: str = "    ") -> list[str]:
    return lines + ([f"{indent}... and {total - len(lines)} more"] if total > len(lines) else [])


# -- lake -----------------------------------------------------------------------------------------------------------
@dataclass
class TableCoverage:
    """One (table, account): which daily partitions exist and what is missing."""

    table: str
    account: str
    days: dict[date, int] = field(default_factory=dict)  # partition day -> rows (-1: unreadable file)
    gaps: list[tuple[date, date]] = field(default_factory=list)  # missing inside [first, last]
    before_start: list[tuple[date, date]] = field(default_factory=list)  # [start_date, first) missing
    unreadable: list[date] = field(default_factory=list)

    @property
    def partitions(self) -> int:
        return len(self.days)

    @property
    def rows(self) -> int:
        return sum(r for r in self.days.values() if r > 0)

    @property
    def empty_partitions(self) -> int:
        return sum(1 for r in self.days.values() if r == 0)

    @property
    def first(self) -> date | None:
        return min(self.days) if self.days else None

    @property
    def last(self) -> date | None:
        return max(self.days) if self.days else None

    @property
    def missing(self) -> int:
        return sum((b - a).days + 1 for a, b in self.gaps)


def _row_count(path: Path) -> int:
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except Exception:  # a torn or foreign file: report it, don't die
        return -1


def _scan_objects(data_dir: Path, table: str, account: str | None) -> Iterable[TableCoverage]:
    """A lake on object storage: its listing, then each partition's footer."""
    from pipeline.storage import lake

    for acc in lake.list_accounts(data_dir, table):
        if account is not None and acc != account:
            continue
        cov = TableCoverage(table, acc)
        for day in lake.list_partitions(data_dir, table, acc):
            try:
                stored = lake.open_partition(data_dir, table, acc, day)
                cov.days[day] = int(stored.metadata.num_rows) if stored is not None else -1
            except Exception:  # a torn or foreign object: report it, don't die
                cov.days[day] = -1
        yield cov


def scan_lake(data_dir: Path, account: str | None, start_date: date | None) -> list[TableCoverage]:
    """Walk lake/<table>/account=<a>/date=<d>/*.parquet (the layout contract) and read only the footers."""
    from pipeline.storage import lakefs

    if not lakefs.location(data_dir).is_local:
        return [_finish(c, start_date) for t in TABLES for c in _scan_objects(data_dir, t, account) if c.days]
    out = []
    for table in TABLES:
        root = data_dir / "lake" / table
        if not root.is_dir():
            continue
        for acc_dir in sorted(root.glob("account=*")):
            acc = acc_dir.name.split("=", 1)[1]
            if account is not None and acc != account:
                continue
            cov = TableCoverage(table, acc)
            for day_dir in sorted(acc_dir.glob("date=*")):
                try:
                    day = date.fromisoformat(day_dir.name.split("=", 1)[1])
                except ValueError:
                    continue
                files = sorted(day_dir.glob("*.parquet"))
                if not files:
                    continue
                counts = [_row_count(f) for f in files]
                cov.days[day] = -1 if min(counts) < 0 else sum(counts)
            if not cov.days:
                continue
            out.append(_finish(cov, start_date))
    return out


def _finish(cov: TableCoverage, start_date: date | None) -> TableCoverage:
    cov.unreadable = sorted(d for d, r in cov.days.items() if r < 0)
    cov.gaps = ranges(missing_days(set(cov.days), cov.first, cov.last))
    # a snapshot table holds the days it was taken on, not a history: nothing before it is missing
    snapshot = cov.table in TABLES and spec_for(cov.table).write == "snapshot"
    if start_date is not None and cov.first is not None and cov.first > start_date and not snapshot:
        cov.before_start = [(start_date, cov.first - timedelta(days=1))]
    return cov


def late_fetched_spot_days(data_dir: Path, account: str | None) -> list[date]:
    """Spot partition days whose CURRENT file was fetched more than SPOT_ZERO_FILL_ARCHIVE_DAYS after the day.

    Binance archives zero-fill cancels after that, and a rewrite replaces the whole partition, so such days very
    likely lack their zero-fill CANCELED/EXPIRED orders. Uses ingested_at; empty partitions are judged by mtime.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pipeline.storage import lakefs

    where = lakefs.location(data_dir)  # the local lake or an S3 prefix: one listing, with modification times
    late = []
    for info in where.files(where.path("spot_orders")):
        parts = info.path.rsplit("/", 3)
        if len(parts) < 4 or not info.base_name.endswith(".parquet") or "=" not in parts[1] or "=" not in parts[2]:
            continue
        acc, day_txt = parts[1].split("=", 1)[1], parts[2].split("=", 1)[1]
        if account is not None and acc != account:
            continue
        try:
            day = date.fromisoformat(day_txt)
            pf = pq.ParquetFile(where.fs.open_input_file(info.path))
            if pf.metadata.num_rows and "ingested_at" in pf.schema_arrow.names:
                fetched = pc.min(pf.read(columns=["ingested_at"]).column(0)).as_py()
                fetched_day = fetched.date() if isinstance(fetched, datetime) else None
            else:
                fetched_day = info.mtime.astimezone(UTC).date() if info.mtime else None
        except Exception:
            continue
        if fetched_day is not None and (fetched_day - day).days > SPOT_ZERO_FILL_ARCHIVE_DAYS:
            late.append(day)
    return sorted(set(late))


# -- export ledger --------------------------------------------------------------------------------------------------
@dataclass
class ExportsSection:
    text: str = ""  # ExportChain.status_summary text (per account)
    never_exported: dict[str, list[tuple[date, date]]] = field(default_factory=dict)  # market -> ranges
    in_flight: dict[str, list[tuple[date, date]]] = field(default_factory=dict)
    problem: str | None = None


def _ledger_path(data_dir: Path) -> Path:
    return data_dir / "state" / "export_ledger.sqlite"


def _entry_days(entries: Iterable[Any], statuses: tuple[str, ...]) -> set[date]:
    return {d for e in entries if e.status in statuses for d in days_between(day_of(e.start_ms), day_of(e.end_ms))}


def exports_section(
    data_dir: Path, account: str, start_date: date | None, now: datetime, monthly_limit: int | None
) -> ExportsSection | None:
    """Ledger summary (ids per status, quota this month against ``monthly_limit``, None: Binance's quota) and the
    day ranges no export covers."""
    if not _ledger_path(data_dir).exists():
        return None
    sec = ExportsSection()
    try:
        from pipeline.exports.chain import ExportChain
        from pipeline.exports.ledger import ExportLedger

        ledger = ExportLedger(data_dir)
        chain = ExportChain(
            None, ledger, data_dir=data_dir, account=account, now=now.timestamp, monthly_limit=monthly_limit
        )
        sec.text = chain.status_summary(account).text()
        entries = ledger.entries(account=account)
    except Exception as exc:  # the ledger module missing/changed, or sqlite busy: fall back to raw SQL
        sec.problem = f"export ledger not readable through pipeline.exports ({type(exc).__name__}: {exc})"
        entries = _raw_ledger_entries(data_dir, account)
        counts: dict[str, int] = {}
        for e in entries:
            counts[e.status] = counts.get(e.status, 0) + 1
        sec.text = "Export ids by status: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none")
    if start_date is not None:
        end = now.date() - timedelta(days=1)
        for market in EXPORT_MARKETS:
            mine = [e for e in entries if e.market == market and getattr(e, "kind", "order") == "order"]
            done, pending = _entry_days(mine, (LedgerState.INGESTED,)), _entry_days(mine, IN_FLIGHT)
            todo = [d for d in missing_days(done, start_date, end) if d not in pending]
            sec.never_exported[market] = ranges(todo)
            sec.in_flight[market] = ranges(d for d in pending - done if start_date <= d <= end)
    return sec


@dataclass(frozen=True)
class _RawEntry:
    market: str
    kind: str
    status: str
    start_ms: int
    end_ms: int


def _raw_ledger_entries(data_dir: Path, account: str) -> list[_RawEntry]:
    try:
        con = sqlite3.connect(f"file:{_ledger_path(data_dir)}?mode=ro", uri=True, timeout=5)
        try:
            rows = con.execute(
                "SELECT market, kind, status, start_ms, end_ms FROM entries WHERE account = ?", (account,)
            ).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return []
    return [_RawEntry(*r) for r in rows]


# -- spot symbol index ------------------------------------------------------------------------------------------------
@dataclass
class SymbolsSection:
    known: int = 0
    with_orders: list[dict[str, Any]] = field(default_factory=list)
    status_counts: dict[str, int] = field(default_factory=dict)
    delisted: list[dict[str, Any]] = field(default_factory=list)  # status delisted or a blind_spot recorded
    blind_spots: list[dict[str, Any]] = field(default_factory=list)  # the JSON's own blind_spots lists
    full_probe_completed_at: int | None = None
    problem: str | None = None


def _load_json(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    if not path.exists():
        return None, None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"{path.name} unreadable ({type(exc).__name__}: {exc})"
    return (doc, None) if isinstance(doc, dict) else (None, f"{path.name}: not a JSON object")


def symbols_section(data_dir: Path, account: str) -> SymbolsSection | None:
    """Read state/spot_symbols.json tolerantly: {"accounts": {acc: {"symbols": {SYM: {...}}}}} or a flat section."""
    doc, problem = _load_json(data_dir / "state" / "spot_symbols.json")
    if doc is None:
        return SymbolsSection(problem=problem) if problem else None
    section = doc.get("accounts", {}).get(account) if isinstance(doc.get("accounts"), dict) else doc
    if isinstance(section, dict) and not identity.owns(section.get(index.STAMP), identity.owner(data_dir, account)):
        return SymbolsSection(  # another Binance account's facts: never shown as this one's
            problem=f"spot_symbols.json: the section of account {account!r} belongs to {section.get(index.STAMP)}, "
            "not to the identity recorded for it; its next backfill replaces it"
        )
    sec = SymbolsSection()
    sec.blind_spots = [b for b in doc.get("blind_spots", []) if isinstance(b, dict)]
    if not isinstance(section, dict):
        return sec
    sec.blind_spots += [b for b in section.get("blind_spots", []) if isinstance(b, dict)]
    sec.full_probe_completed_at = section.get("full_probe_completed_at")
    symbols = section.get("symbols", {})
    if not isinstance(symbols, dict):
        sec.problem = "spot_symbols.json: 'symbols' is not an object"
        return sec
    for name, act in sorted(symbols.items()):
        if not isinstance(act, dict):
            continue
        sec.known += 1
        status = str(act.get("status") or "unknown")
        sec.status_counts[status] = sec.status_counts.get(status, 0) + 1
        entry = {"symbol": name, **act}
        if (act.get("order_count") or 0) > 0 or act.get("first_order_time") or act.get("last_order_time"):
            sec.with_orders.append(entry)
        if status == "delisted" or act.get("blind_spot"):
            sec.delisted.append(entry)
    return sec


def _symbol_line(s: dict[str, Any]) -> str:
    count = f"{s.get('order_count') or '?'}{'' if s.get('count_exact') else '+'}"
    return (
        f"    {s['symbol']:<14} {s.get('status') or 'unknown':<9} first {fmt_ms(s.get('first_order_time'))}"
        f"  last {fmt_ms(s.get('last_order_time'))}  orders {count}"
        f"  evidence {','.join(s.get('evidence') or []) or '-'}"
    )


# -- the report -------------------------------------------------------------------------------------------------------
@dataclass
class StatusReport:
    data_dir: Path
    account: str | None
    generated_at: datetime
    start_date: date | None
    spot_symbols_config: tuple[str, ...]
    tables: list[TableCoverage] = field(default_factory=list)
    exports: dict[str, ExportsSection] = field(default_factory=dict)  # per account
    symbols: dict[str, SymbolsSection] = field(default_factory=dict)  # per account
    late_spot_days: list[date] = field(default_factory=list)
    catalog: str | None = None
    trades: list[str] = field(default_factory=list)  # rendered by pipeline.trades.status

    @property
    def today(self) -> date:
        return self.generated_at.date()

    def render(self) -> str:
        out = [
            f"orderlake status: {self.data_dir} (account: {self.account or 'all'}; "
            f"{self.generated_at:%Y-%m-%d %H:%M} UTC; start date {self.start_date or '-'})"
        ]
        out += self._render_lake()
        out += self._render_exports()
        out += self._render_symbols()
        out += self.trades
        out += self._render_blind_spots()
        if self.catalog:
            out += ["", f"Catalog: {self.catalog}"]
        return "\n".join(out) + "\n"

    def _render_lake(self) -> list[str]:
        out = ["", "LAKE (daily partitions; an empty partition = the day was fetched and had no rows)"]
        if not self.tables:
            return [*out, "  no partitions yet: run `make run` or `orderlake backfill --start ... --end ...`"]
        for c in self.tables:
            out.append(
                f"  {c.table} [{c.account}]: {c.partitions} partitions ({c.empty_partitions} empty), "
                f"{c.first}..{c.last}, {c.rows:,} rows"
            )
            out.append("    gaps: " + (f"{c.missing} missing days: {fmt_ranges(c.gaps)}" if c.gaps else "none"))
            if c.before_start:
                out.append(f"    before the first partition (since start date): {fmt_ranges(c.before_start)}")
            behind = (self.today - timedelta(days=1) - c.last).days
            if behind > 0:
                out.append(f"    last partition is {behind} day(s) before yesterday (UTC)")
            if c.unreadable:
                out.append(f"    UNREADABLE files (re-materialize these days): {fmt_ranges(ranges(c.unreadable))}")
        return out

    def _render_exports(self) -> list[str]:
        out = ["", "EXPORTS (futures / portfolio-margin order history; ledger state/export_ledger.sqlite)"]
        if not self.exports:
            return [*out, "  no export ledger yet (no export requested)"]
        for acc, sec in self.exports.items():
            if sec.problem:
                out.append(f"  [{acc}] note: {sec.problem}")
            out += ["  " + line for line in sec.text.splitlines()]
            for market, runs in sec.in_flight.items():
                if runs:
                    out.append(f"  [{acc}] {market}: requested, not ingested yet: {fmt_ranges(runs)}")
        return out

    def _render_symbols(self) -> list[str]:
        out = ["", "SPOT SYMBOLS (state/spot_symbols.json)"]
        if not self.symbols:
            return [*out, "  no symbol index yet (spot discovery has not run)"]
        for acc, sec in self.symbols.items():
            if sec.problem:
                out.append(f"  [{acc}] problem: {sec.problem}")
            counts = ", ".join(f"{k} {v}" for k, v in sorted(sec.status_counts.items())) or "none"
            probe = fmt_ms(sec.full_probe_completed_at) if sec.full_probe_completed_at else "never completed"
            out.append(
                f"  [{acc}] {sec.known} symbols known ({counts}); {len(sec.with_orders)} with orders; "
                f"full probe: {probe}"
            )
            lines = [_symbol_line(s) for s in sec.with_orders[:LIST_LIMIT]]
            out += _more(lines, len(sec.with_orders))
        return out

    def _render_blind_spots(self) -> list[str]:
        out = ["", "KNOWN BLIND SPOTS (what this lake cannot contain, and why)"]
        config = set(self.spot_symbols_config)
        # 1. delisted pairs
        for acc, sec in self.symbols.items():
            for s in sec.delisted:
                where = "in ORDERLAKE_SPOT_SYMBOLS" if s["symbol"] in config else "NOT in ORDERLAKE_SPOT_SYMBOLS"
                detail = s.get("blind_spot") or "delisted"
                out.append(f"  - [{acc}] delisted pair {s['symbol']} ({where}): {detail}")
            named = {s["symbol"] for s in sec.delisted}
            for b in sec.blind_spots:
                if b.get("kind") == "delisted" and b.get("symbol") in named:
                    continue  # already listed above, with whether the configuration names it
                span = f" {b.get('start') or ''}..{b.get('end') or ''}" if b.get("start") or b.get("end") else ""
                sym = f" {b['symbol']}" if b.get("symbol") else ""
                out.append(f"  - [{acc}] {b.get('kind', 'blind spot')}{sym}{span}: {b.get('detail', '')}")
        out.append(
            "  - delisted spot pairs that appear in neither exchangeInfo, balances, the lake nor "
            "ORDERLAKE_SPOT_SYMBOLS cannot be discovered: list them in ORDERLAKE_SPOT_SYMBOLS "
            f"(configured now: {', '.join(sorted(config)) or 'none'}); pairs Binance rejects with -1121 "
            "have no history reachable through the API."
        )
        # 2. archived zero-fill cancels
        cutoff = self.today - timedelta(days=SPOT_ZERO_FILL_ARCHIVE_DAYS)
        out.append(
            f"  - spot zero-fill CANCELED/EXPIRED orders that ended before {cutoff} are archived by Binance "
            "(-2026) and not returned by allOrders: days fetched after that point can lack them."
        )
        if self.late_spot_days:
            out.append(
                f"    {len(self.late_spot_days)} spot day(s) were fetched more than {SPOT_ZERO_FILL_ARCHIVE_DAYS} "
                f"days late (likely missing zero-fill cancels): {fmt_ranges(ranges(self.late_spot_days))}"
            )
        # 3. futures / PM days never exported
        for acc, sec in self.exports.items():
            for market, runs in sec.never_exported.items():
                if runs:
                    out.append(
                        f"  - [{acc}] {market}: days with no export ingested or in flight since the "
                        f"start date: {fmt_ranges(runs)}"
                    )
        if not self.exports:
            out.append("  - futures / PM: no export ledger, so no futures or portfolio-margin history is covered.")
        # 4. REST retention
        out.append(
            f"  - USD-M futures REST allOrders keeps only {FUTURES_REST_RETENTION_DAYS} days (unfilled "
            f"cancels {FUTURES_ZERO_FILL_RETENTION_DAYS} days): orders before "
            f"{self.today - timedelta(days=FUTURES_REST_RETENTION_DAYS)} are reachable only through the "
            f"quota-limited export (about {EXPORT_MONTHLY_QUOTA['order']} ids a month, shared with the website)."
        )
        return out


def _accounts(data_dir: Path) -> list[str]:
    from pipeline.storage import lake

    found = {a for t in TABLES for a in lake.list_accounts(data_dir, t)}
    doc, _ = _load_json(data_dir / "state" / "spot_symbols.json")
    if doc and isinstance(doc.get("accounts"), dict):
        found |= set(doc["accounts"])
    for e in _raw_ledger_entries_all(data_dir):
        found.add(e)
    return sorted(found)


def _raw_ledger_entries_all(data_dir: Path) -> list[str]:
    if not _ledger_path(data_dir).exists():
        return []
    try:
        con = sqlite3.connect(f"file:{_ledger_path(data_dir)}?mode=ro", uri=True, timeout=5)
        try:
            return [r[0] for r in con.execute("SELECT DISTINCT account FROM entries")]
        finally:
            con.close()
    except sqlite3.Error:
        return []


def _catalog_line(data_dir: Path) -> str:
    path = data_dir / "warehouse.duckdb"
    if not path.exists():
        return f"{path} not built yet (it is built by the pipeline; `make run` or `orderlake backfill`)"
    built = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    return f'{path} (built {built:%Y-%m-%d %H:%M} UTC); query it with `orderlake sql "SELECT ..."`'


def coverage_report(
    data_dir: str | os.PathLike[str],
    account: str | None = None,
    *,
    start_date: date | None = None,
    spot_symbols: Iterable[str] = (),
    export_monthly_limit: int | None = None,
    export_monthly_limits: dict[str, int | None] | None = None,
    now: datetime | None = None,
) -> StatusReport:
    """Build the coverage report; ``account=None`` covers every account found in the lake and state files."""
    data_dir = Path(data_dir).resolve()
    now = now or datetime.now(UTC)
    report = StatusReport(
        data_dir=data_dir,
        account=account,
        generated_at=now,
        start_date=start_date,
        spot_symbols_config=tuple(spot_symbols),
    )
    report.tables = scan_lake(data_dir, account, start_date)
    accounts = [account] if account is not None else _accounts(data_dir)
    for acc in accounts:
        sec = exports_section(data_dir, acc, start_date, now, export_monthly_limit)
        if sec is not None:
            report.exports[acc] = sec
        sym = symbols_section(data_dir, acc)
        if sym is not None:
            report.symbols[acc] = sym
    report.trades = trades_section(
        data_dir, accounts, start_date=start_date, now=now, monthly_limits=export_monthly_limits
    )
    report.late_spot_days = late_fetched_spot_days(data_dir, account)
    report.catalog = _catalog_line(data_dir)
    return report

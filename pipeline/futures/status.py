"""``orderlake status``, USDⓈ-M and PM section: per market which source covers which days (REST whole, an export,
or only the lake's rows), the orders still awaiting a final state, and the download ids spent and planned this
month. Offline: it reads the lake, ``state/futures_rest.json`` and the export ledger, never Binance."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from pipeline.binance.facts import EXPORT_MONTHLY_QUOTA
from pipeline.exports.ledger import ExportLedger, ledger_path
from pipeline.futures import state
from pipeline.futures.plan import MARKETS, exported_days, plan_daily_exports
from pipeline.futures.stored import latest_orders
from pipeline.settings import Settings
from pipeline.storage import lake
from pipeline.storage.schemas import futures_orders
from pipeline.times import day_of, month_of
from pipeline.times import now_ms as wall_ms
from pipeline.warehouse.status import fmt_ranges, ranges

NAMES = {"usdm": "USDⓈ-M", "pm_um": "PM UM"}


def coverage(data_dir: Path, account: str, market: str, first: date, last: date) -> dict[str, list[date]]:
    """Days of ``first..last`` by source: ``rest`` (REST served them whole), ``export``, ``lake only`` (rows but no
    complete source), ``missing``."""
    rest = state.complete_days(state.load(data_dir, account, market))
    exported = exported_days(data_dir, account, market, first, last) if ledger_path(data_dir).exists() else set()
    have = set(lake.list_partitions(data_dir, futures_orders.MARKETS[market], account))
    out: dict[str, list[date]] = {"rest": [], "export": [], "lake only": [], "missing": []}
    d = first
    while d <= last:
        key = "rest" if d in rest else "export" if d in exported else "lake only" if d in have else "missing"
        out[key].append(d)
        d += timedelta(days=1)
    return out


def futures_status_lines(
    data_dir: str | Path,
    account: str,
    *,
    now_ms: int,
    start_date: date,
    monthly_limit: int | None = None,
    monthly_reconciliation: bool = False,
) -> list[str]:
    data_dir = Path(data_dir)
    table_days = [lake.list_partitions(data_dir, t, account) for t in futures_orders.MARKETS.values()]
    if not any(table_days) and not state.state_path(data_dir).exists():
        return []
    today = day_of(now_ms)
    month = month_of(now_ms)
    limit = EXPORT_MONTHLY_QUOTA["order"] if monthly_limit is None else monthly_limit
    plans = {
        p.market: p
        for p in plan_daily_exports(data_dir, account, today, now_ms, since=start_date, monthly=monthly_reconciliation)
    }
    out = [f"USDⓈ-M and PM orders, account {account} (REST daily, exports only where REST cannot reach):"]
    for market in MARKETS:
        section = state.load(data_dir, account, market)
        cover = coverage(data_dir, account, market, start_date, today - timedelta(days=1))
        out.append(f"  {NAMES[market]}:")
        for source in ("rest", "export", "lake only", "missing"):
            if cover[source]:
                out.append(f"    {source:<9} {fmt_ranges(ranges(cover[source]))}")
        stored = latest_orders(data_dir, account, futures_orders.MARKETS[market])
        open_now = sum(1 for o in stored.values() if o.is_open)
        vanished = len(section.get("vanished", {}))
        out.append(
            f"    awaiting a final state: {open_now} open order(s); {vanished} vanished from REST, "
            f"{section.get('open_beyond_rest', 0)} older than REST's 90 days (an export settles them)"
        )
        spent = 0
        if ledger_path(data_dir).exists():
            spent = ExportLedger(data_dir).quota(market, "order", account, month, limit).used
        planned = len(plans[market].exports)
        out.append(
            f"    download ids {month}: {spent} spent, {planned} planned"
            + (f" ({plans[market].describe()})" if planned else "")
        )
    return out


def futures_status_text(settings: Settings, account: str | None = None, now_ms: int | None = None) -> str:
    """The section for ``orderlake status`` (empty when the lake holds no futures orders)."""
    lines = futures_status_lines(
        settings.data_dir,
        account or settings.account,
        now_ms=now_ms if now_ms is not None else wall_ms(),
        start_date=settings.start_date,
        monthly_limit=settings.export_monthly_limit,
        monthly_reconciliation=settings.monthly_reconciliation,
    )
    return "\n".join(["", *lines, ""]) if lines else ""

"""``orderlake check``'s one screen: the probes of every surface plus this month's export quota from the ledger."""

from __future__ import annotations

from pipeline.binance.exports import EXPORT_ENDPOINTS
from pipeline.binance.facts import EXPORT_MONTHLY_QUOTA
from pipeline.exports.ledger import ExportLedger, ledger_path
from pipeline.preflight.surfaces import SURFACES, Probe, run_probes
from pipeline.settings import Settings
from pipeline.times import month_of, now_ms

MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def surfaces_for(select: str, transport: str) -> tuple[str, ...]:
    """The surfaces a backfill of ``select`` talks to; spot REST always (it names the account: its uid)."""
    spot = ("spot REST", "spot WS API") if transport == "ws" else ("spot REST",)
    if select == "spot":
        return spot
    if select in ("exports", "trades", "income"):
        return ("spot REST", "USDⓈ-M", "PM")
    return (*spot, "USDⓈ-M", "PM")


def quota(settings: Settings, probe: Probe) -> None:
    """Download ids left this month per export endpoint, as the ledger counts them (Binance has no endpoint)."""
    ledger = ExportLedger(settings.data_dir) if ledger_path(settings.data_dir).exists() else None
    month = month_of(now_ms())
    for market, kind in sorted(EXPORT_ENDPOINTS):
        configured = {
            "order": settings.export_monthly_limit,
            "trade": settings.export_trade_monthly_limit,
            "income": settings.export_income_monthly_limit,
        }.get(kind)
        limit = EXPORT_MONTHLY_QUOTA[kind] if configured is None else configured
        left = limit if ledger is None else ledger.quota(market, kind, settings.account, month, limit).remaining
        text = f"{market}/{kind} exports {month}: {left} of {limit} download ids left"
        if left == 0:
            probe.add("quota", "quota", "warn", f"{text}: new export requests wait for next month")
        else:
            probe.add("quota", "quota", "ok", text)


def run_check(settings: Settings, surfaces: tuple[str, ...] = SURFACES) -> Probe:
    probe = run_probes(settings, surfaces)
    quota(settings, probe)
    return probe


def render(probe: Probe) -> str:
    lines = [f"{MARK[f.level]}  {f.surface:<12} {f.check:<12} {f.text}" for f in probe.findings]
    warns = sum(1 for f in probe.findings if f.level == "warn")
    if probe.failures:  # the last line is the cause and its fix
        lines.append(f"{len(probe.failures)} failure(s), {warns} warning(s); first: {first_failure(probe)}")
    else:
        lines.append(f"every check passed, {warns} warning(s)")
    return "\n".join(lines)


def first_failure(probe: Probe) -> str | None:
    """One line naming the first failure's surface, its cause and its fix (the backfill's preflight)."""
    return probe.failures[0].line() if probe.failures else None

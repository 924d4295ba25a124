"""Which days come from REST and which need a download id: the backfill's cheapest mix and the daily runs' exports."""

from datetime import date, timedelta

from pipeline.exports.ledger import ExportLedger
from pipeline.futures import state
from pipeline.futures.plan import first_rest_day, plan_backfill, plan_daily_exports
from pipeline.times import DAY_MS, day_end_ms, day_start_ms, days_between

TODAY = date(2026, 6, 10)
NOW = day_start_ms(TODAY) + 13 * 3_600_000  # 13:00 UTC


def _complete(tmp_path, market: str, days) -> None:
    state.update(tmp_path, "main", market, lambda s: state.add_days(s, set(days)))


def _exported(tmp_path, market: str, start: date, end: date) -> None:
    ledger = ExportLedger(tmp_path)
    entry = ledger.reserve_attempt(
        market=market,
        kind="order",
        api="x",
        account="main",
        start_ms=day_start_ms(start),
        end_ms=day_end_ms(end),
        now_ms=NOW,
        limit=10,
        spacing_ms=0,
        failure_cooldown_ms=0,
    ).entry
    assert entry is not None
    ledger.record_created(entry.id, download_id="42", avg_cost_ms=None, now_ms=NOW, next_poll_at=NOW)


def test_first_rest_day_is_the_first_whole_day_within_three_days() -> None:
    assert first_rest_day(NOW) == TODAY - timedelta(days=2)  # 06-07 began 3 days and 13 h ago: its cancels are gone


def test_backfill_takes_rest_for_recent_days_and_one_id_per_year_for_the_rest(tmp_path) -> None:
    start = TODAY - timedelta(days=730)
    for plan in plan_backfill(tmp_path, "main", start, TODAY - timedelta(days=1), NOW):
        assert plan.rest_days == days_between(TODAY - timedelta(days=2), TODAY - timedelta(days=1))
        assert plan.rest_from == TODAY - timedelta(days=89)  # REST still reaches it: current states, no id
        # 730 days are two windows of at most a year through yesterday, no more than up to the REST days
        assert [(r.start, r.end) for r in plan.exports] == [
            (start, start + timedelta(days=364)),
            (start + timedelta(days=365), TODAY - timedelta(days=1)),
        ]
        assert "2 download id(s)" in plan.describe()
    start = TODAY - timedelta(days=731)  # through yesterday would take a third id: the exports stop before REST
    for plan in plan_backfill(tmp_path, "main", start, TODAY - timedelta(days=1), NOW):
        assert [(r.start, r.end) for r in plan.exports] == [
            (start, start + timedelta(days=364)),
            (start + timedelta(days=365), TODAY - timedelta(days=3)),
        ]


def test_backfill_skips_days_rest_or_an_export_already_covers(tmp_path) -> None:
    start = TODAY - timedelta(days=60)
    _complete(tmp_path, "usdm", days_between(TODAY - timedelta(days=20), TODAY - timedelta(days=1)))
    _exported(tmp_path, "usdm", start, TODAY - timedelta(days=40))
    usdm, pm = plan_backfill(tmp_path, "main", start, TODAY - timedelta(days=1), NOW)
    assert [(r.start, r.end) for r in usdm.exports] == [(TODAY - timedelta(days=39), TODAY - timedelta(days=21))]
    assert [(r.start, r.end) for r in pm.exports] == [(start, TODAY - timedelta(days=1))]


def test_daily_runs_need_no_export_while_rest_covers_every_day(tmp_path) -> None:
    assert all(not p.exports for p in plan_daily_exports(tmp_path, "main", TODAY, NOW, since=date(2024, 1, 1)))
    _complete(tmp_path, "usdm", days_between(TODAY - timedelta(days=30), TODAY - timedelta(days=1)))
    assert all(not p.exports for p in plan_daily_exports(tmp_path, "main", TODAY, NOW, since=date(2024, 1, 1)))


def test_a_day_missed_for_longer_than_rest_keeps_it_needs_an_export(tmp_path) -> None:
    missed = TODAY - timedelta(days=10)
    days = [d for d in days_between(TODAY - timedelta(days=30), TODAY - timedelta(days=1)) if d != missed]
    _complete(tmp_path, "pm_um", days)
    usdm, pm = plan_daily_exports(tmp_path, "main", TODAY, NOW, since=date(2024, 1, 1))
    assert not usdm.exports
    assert [(r.start, r.end) for r in pm.exports] == [(missed, missed)]
    assert pm.reasons[str(pm.exports[0])] == "missed by REST"
    _exported(tmp_path, "pm_um", missed, missed)
    assert not plan_daily_exports(tmp_path, "main", TODAY, NOW, since=date(2024, 1, 1))[1].exports


def test_a_vanished_order_needs_an_export_from_its_creation_to_its_disappearance(tmp_path) -> None:
    created = NOW - 5 * DAY_MS

    def vanish(section: dict) -> None:
        section["vanished"] = {"BTCUSDT:7": {"symbol": "BTCUSDT", "order_id": 7, "time": created, "seen_ms": NOW}}

    state.update(tmp_path, "main", "usdm", vanish)
    usdm, _ = plan_daily_exports(tmp_path, "main", TODAY, NOW, since=date(2024, 1, 1))
    assert [(r.start, r.end) for r in usdm.exports] == [(TODAY - timedelta(days=5), TODAY)]
    assert "vanished orders" in usdm.describe()


def test_monthly_reconciliation_only_when_asked_and_on_the_first(tmp_path) -> None:
    first = date(2026, 7, 1)
    now = day_start_ms(first) + 3_600_000
    assert not plan_daily_exports(tmp_path, "main", first, now, since=date(2024, 1, 1))[0].exports
    usdm, pm = plan_daily_exports(tmp_path, "main", first, now, since=date(2024, 1, 1), monthly=True)
    assert (
        [(r.start, r.end) for r in usdm.exports]
        == [(date(2026, 6, 1), date(2026, 6, 30))]
        == [(r.start, r.end) for r in pm.exports]
    )
    assert usdm.reasons[str(usdm.exports[0])] == "monthly reconciliation"
    assert not plan_daily_exports(tmp_path, "main", TODAY, NOW, since=date(2024, 1, 1), monthly=True)[0].exports

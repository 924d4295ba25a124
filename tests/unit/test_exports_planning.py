"""Export ledger + request planning: coalescing, quota refusal before the call, unknown outcomes, pacing."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from datetime import date, timedelta
from typing import Any

import pytest

from pipeline.exports.chain import ExportChain
from pipeline.exports.errors import ExportRejected, ExportRequestUnknown, QuotaWouldBeExceeded
from pipeline.exports.ledger import ExportLedger
from pipeline.exports.planning import MAX_SPAN_MS, PlannedRange, coalesce, covered_days, refresh_range
from pipeline.settings import Settings
from pipeline.times import DAY_MS, day_end_ms, day_of, day_start_ms, month_of
from tests.support.exports import PM, T0, USDM, Clock, FakeClient, attempt, make_chain, make_error

YEAR_MS = 365 * DAY_MS


def test_day_ranges_are_utc_and_inclusive() -> None:
    assert day_start_ms(date(2024, 1, 1)) == 1_704_067_200_000
    assert day_end_ms(date(2024, 1, 1)) == 1_704_067_200_000 + DAY_MS - 1
    r = PlannedRange(date(2024, 1, 1), date(2024, 12, 30))  # 365 days in a leap year
    assert r.end_ms - r.start_ms == MAX_SPAN_MS < YEAR_MS


def test_two_years_coalesce_into_two_requests_each_within_a_year(tmp_path) -> None:
    chain = make_chain(tmp_path, FakeClient(), Clock())
    plan = chain.plan(USDM, date(2022, 1, 1), date(2023, 12, 31))  # 730 days
    assert [str(r) for r in plan.requests] == ["2022-01-01..2022-12-31", "2023-01-01..2023-12-31"]
    assert all(r.end_ms - r.start_ms <= MAX_SPAN_MS for r in plan.requests)
    # a leap year makes 2023+2024 731 days: one day more than two 365-day windows
    leap = chain.plan(USDM, date(2023, 1, 1), date(2024, 12, 31))
    assert [r.days for r in leap.requests] == [365, 365, 1]


def test_covered_range_needs_no_request_and_overlap_only_the_gap(tmp_path) -> None:
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    first = chain.request(USDM, date(2024, 1, 1), date(2024, 6, 30))
    assert len(first) == 1 and len(client.creates) == 1
    again = chain.request(USDM, date(2024, 1, 1), date(2024, 6, 30))
    assert list(again) == [] and again.plan.requests == () and len(client.creates) == 1
    assert [e.id for e in again.plan.covering] == [first[0].id]
    plan = chain.plan(USDM, date(2024, 3, 1), date(2024, 12, 31))
    assert [str(r) for r in plan.requests] == ["2024-07-01..2024-12-31"]
    # other market / other account are separate ranges
    assert len(chain.plan(PM, date(2024, 1, 1), date(2024, 6, 30)).requests) == 1


def test_greedy_spans_a_covered_hole_when_that_saves_an_id() -> None:
    start, end = date(2024, 1, 1), date(2024, 3, 31)
    covered = covered_days([(day_start_ms(date(2024, 2, 1)), day_end_ms(date(2024, 2, 10)))], start, end)
    assert len(covered) == 10
    assert [str(r) for r in coalesce(start, end, covered)] == ["2024-01-01..2024-03-31"]
    # a partially covered day counts as uncovered
    part = covered_days([(day_start_ms(date(2024, 2, 1)) + 1, day_end_ms(date(2024, 2, 2)))], start, end)
    assert part == {date(2024, 2, 2)}
    # with max 40-day windows the hole splits the work into the two real gaps
    assert [str(r) for r in coalesce(start, end, covered, max_days=40)] == [
        "2024-01-01..2024-01-31",
        "2024-02-11..2024-03-21",
        "2024-03-22..2024-03-31",
    ]


def test_end_is_clipped_to_the_last_complete_utc_day(tmp_path) -> None:
    chain = make_chain(tmp_path, FakeClient(), Clock())  # now = 2025-03-15 12:00 UTC
    plan = chain.plan(USDM, date(2025, 3, 1), date(2025, 12, 31))
    assert plan.end == date(2025, 3, 14) and plan.requested_end == date(2025, 12, 31)
    assert "clipped" in plan.describe()


def test_quota_refused_before_the_call(tmp_path) -> None:
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock, monthly_limit=2)
    with pytest.raises(QuotaWouldBeExceeded) as exc:
        chain.request(USDM, date(2021, 1, 1), date(2023, 12, 31))  # needs 3
    assert client.creates == []
    assert "0 of 2" in str(exc.value) and "3 more needed" in str(exc.value)
    chain.request(USDM, date(2021, 1, 1), date(2021, 12, 31))
    clock.advance(60)
    chain.request(USDM, date(2022, 1, 1), date(2022, 12, 31))
    clock.advance(60)
    with pytest.raises(QuotaWouldBeExceeded) as exc:
        chain.request(USDM, date(2023, 1, 1), date(2023, 12, 31))
    msg = str(exc.value)
    assert len(client.creates) == 2
    assert "2 of 2" in msg and "2025-04-01 00:00:00 UTC" in msg and "website" in msg
    assert chain.quota(USDM).remaining == 0
    # the quota is per endpoint: PM still has its own ids
    chain.request(PM, date(2023, 1, 1), date(2023, 12, 31))
    assert len(client.creates) == 3
    # next calendar month: the quota is back
    clock.t = T0 + 20 * 86400
    assert month_of(int(clock() * 1000)) == "2025-04"
    chain.request(USDM, date(2023, 1, 1), date(2023, 12, 31))
    assert len(client.creates) == 4


def test_partial_uses_what_is_left_then_refuses(tmp_path) -> None:
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock, monthly_limit=1)
    assert chain.monthly_limit == 1
    with pytest.raises(QuotaWouldBeExceeded):
        chain.request(USDM, date(2022, 1, 1), date(2023, 12, 31), partial=True, sleep=clock.sleep)
    assert len(client.creates) == 1  # the oldest year was requested, the second refused before the call


def test_binance_quota_exhausted_is_recorded_and_stops_the_month(tmp_path) -> None:
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    client.create_error = make_error("ExportQuotaExhausted", "monthly limit reached", code=-1, http_status=400)
    with pytest.raises(QuotaWouldBeExceeded) as exc:
        chain.request(USDM, date(2024, 1, 1), date(2024, 1, 31))
    assert "exhausted" in str(exc.value)
    assert chain.quota(USDM).blocked_by_binance and chain.quota(USDM).remaining == 0
    client.create_error = None
    clock.advance(3600)
    with pytest.raises(QuotaWouldBeExceeded):
        chain.request(USDM, date(2024, 1, 1), date(2024, 1, 31))
    assert len(client.creates) == 1  # no second call this month
    assert [e.status for e in chain.ledger.entries()] == ["failed"]


def test_timeout_marks_unknown_blocks_range_and_is_never_repeated(tmp_path) -> None:
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    client.create_error = make_error("OutcomeUnknown", "read timeout after send")
    with pytest.raises(ExportRequestUnknown) as exc:
        chain.request(USDM, date(2024, 1, 1), date(2024, 3, 31))
    msg = str(exc.value)
    entry = chain.ledger.get(exc.value.entry_id)
    assert entry.status == "unknown" and entry.download_id is None
    assert "Order History" in msg and "download history" in msg and f"resolve {entry.id}" in msg
    assert "--download-id" in msg
    client.create_error = None
    clock.advance(3600)
    again = chain.request(USDM, date(2024, 1, 1), date(2024, 3, 31))
    assert list(again) == [] and [e.id for e in again.plan.blocked] == [entry.id]
    assert "BLOCKED" in again.plan.describe()
    assert len(client.creates) == 1
    q = chain.quota(USDM)
    assert (q.used, q.unknown) == (1, 1)
    # the user found nothing on the website: release -> planned again, no longer counted
    chain.ledger.resolve_unknown(entry.id)
    assert chain.quota(USDM).used == 0
    assert len(chain.request(USDM, date(2024, 1, 1), date(2024, 3, 31))) == 1
    assert len(client.creates) == 2


def test_unknown_resolved_with_download_id_is_polled(tmp_path) -> None:
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    client.create_error = make_error("ServerError", "503 Unknown error", http_status=503)
    with pytest.raises(ExportRequestUnknown) as exc:
        chain.request(USDM, date(2024, 1, 1), date(2024, 3, 31))
    e = chain.ledger.resolve_unknown(exc.value.entry_id, download_id="555", now_ms=int(clock() * 1000))
    assert (e.status, e.download_id, e.counts_quota) == ("processing", "555", True)
    assert [o.download_id for o in chain.poll_due()] == ["555"]


def test_definitive_rejection_is_failed_not_counted_and_cooled_down(tmp_path) -> None:
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    client.create_error = make_error(
        "ApiKeyRejected", "-2015 Invalid API-key, IP, or permissions", code=-2015, http_status=401
    )
    with pytest.raises(ExportRejected):
        chain.request(USDM, date(2024, 1, 1), date(2024, 3, 31))
    assert chain.ledger.entries()[0].status == "failed" and chain.quota(USDM).used == 0
    client.create_error = None
    clock.advance(60)
    res = chain.request(USDM, date(2024, 1, 1), date(2024, 3, 31))
    assert list(res) == [] and res.not_before == pytest.approx(T0 + 15 * 60)
    clock.advance(15 * 60)
    assert len(chain.request(USDM, date(2024, 1, 1), date(2024, 3, 31))) == 1


def test_create_calls_are_spaced_31s_per_limiter_group_without_sleeping(tmp_path) -> None:
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    res = chain.request(USDM, date(2022, 1, 1), date(2023, 12, 31))
    assert len(res) == 1 and [str(r) for r in res.deferred] == ["2023-01-01..2023-12-31"]
    assert res.not_before == pytest.approx(T0 + 31)
    # the same limiter group ("futures") is also paced for other kinds; papi is another group
    assert len(chain.request(PM, date(2022, 1, 1), date(2022, 12, 31))) == 1
    clock.advance(30)
    assert list(chain.request(USDM, date(2022, 1, 1), date(2023, 12, 31))) == []
    clock.advance(1)
    res = chain.request(USDM, date(2022, 1, 1), date(2023, 12, 31))
    assert len(res) == 1 and res.done
    assert len(client.creates) == 3


def test_cli_style_request_sleeps_on_the_scaled_clock(tmp_path) -> None:
    client, clock = FakeClient(), Clock()
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock.sleep(s)

    chain = make_chain(tmp_path, client, clock, time_scale=0.01)
    res = chain.request(USDM, date(2021, 1, 1), date(2023, 12, 31), sleep=sleep)
    assert len(res) == 3 and res.done
    assert slept and all(s == pytest.approx(0.31, abs=0.01) for s in slept)


def test_stale_attempt_becomes_unknown(tmp_path) -> None:
    clock = Clock()
    ledger = ExportLedger(tmp_path)
    now = int(clock() * 1000)
    assert attempt(ledger, end_ms=DAY_MS - 1, now_ms=now).status == "attempted"
    assert ledger.expire_stale_attempts(now + 60_000, 300_000) == []
    stale = ledger.expire_stale_attempts(now + 301_000, 300_000)
    assert [e.status for e in stale] == ["unknown"]


def test_concurrent_reservations_never_double_spend(tmp_path) -> None:
    ExportLedger(tmp_path)
    results = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        ledger = ExportLedger(tmp_path)  # own connection, like another process
        barrier.wait()
        results.append(
            ledger.reserve_attempt(
                market="usdm",
                kind="order",
                api="futures",
                account="main",
                start_ms=0,
                end_ms=DAY_MS - 1,
                now_ms=int(T0 * 1000),
                limit=10,
                spacing_ms=31_000,
                failure_cooldown_ms=0,
            )
        )

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.entry is not None for r in results) == 1
    assert len(ExportLedger(tmp_path).entries()) == 1


def test_ledger_survives_reopen_and_records_events(tmp_path) -> None:
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    [entry] = chain.request(USDM, date(2024, 1, 1), date(2024, 1, 1) + timedelta(days=9))
    reopened = ExportLedger(tmp_path).by_download_id(entry.download_id)
    assert reopened.avg_cost_ms == 7_241_837 and reopened.status == "processing"
    assert [ev["event"] for ev in ExportLedger(tmp_path).events(entry.id)] == ["attempt", "created"]
    assert (tmp_path / "state" / "export_ledger.sqlite").exists()
    with ExportLedger(tmp_path)._connect() as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_status_summary_and_resolve_cli(tmp_path, capsys) -> None:
    from assets.cli import main

    settings = Settings(data_dir=tmp_path)
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    chain.request(USDM, date(2024, 1, 1), date(2024, 1, 31))
    clock.advance(60)
    client.create_error = make_error("OutcomeUnknown", "timeout")
    with pytest.raises(ExportRequestUnknown) as exc:
        chain.request(USDM, date(2023, 1, 1), date(2023, 1, 31))
    summary = chain.status_summary()
    assert len(summary.open) == 1 and [e.id for e in summary.unknown] == [exc.value.entry_id]
    q = {(q.market, q.kind): q for q in summary.quotas}
    assert (q[("usdm", "order")].used, q[("usdm", "order")].remaining) == (2, 8)
    assert q[("pm_um", "order")].remaining == 10
    text = summary.text()
    assert "UNKNOWN outcome" in text and "2 used, 8 of 10 left, 1 with unknown outcome" in text
    assert main(["exports", "resolve", str(exc.value.entry_id), "--download-id", "777"], settings) == 0
    assert "attached" in capsys.readouterr().out
    assert chain.ledger.by_download_id("777").status == "processing"
    assert main(["exports", "resolve", str(exc.value.entry_id)], settings) == 2  # not unknown any more
    assert main(["exports", "list"], settings) == 0
    rows = [[c.strip() for c in line.split("|")] for line in capsys.readouterr().out.splitlines()]
    [row] = [r for r in rows if r[0] == str(exc.value.entry_id)]
    assert row[4:6] == ["processing", "777"]


def test_reservation_is_trimmed_to_the_days_nobody_covers(tmp_path) -> None:
    ledger = ExportLedger(tmp_path)
    now = int(T0 * 1000)

    def reserve(start: date, end: date):
        return ledger.reserve_attempt(
            market="usdm",
            kind="order",
            api="futures",
            account="main",
            start_ms=day_start_ms(start),
            end_ms=day_end_ms(end),
            now_ms=now,
            limit=10,
            spacing_ms=0,
            failure_cooldown_ms=0,
        )

    first = reserve(date(2024, 1, 1), date(2024, 6, 30)).entry
    # another process planned the whole year before the first reservation was committed
    second = reserve(date(2024, 1, 1), date(2024, 12, 31)).entry
    assert (second.start_ms, second.end_ms) == (day_start_ms(date(2024, 7, 1)), day_end_ms(date(2024, 12, 31)))
    covered = reserve(date(2024, 3, 1), date(2024, 9, 30))
    assert covered.entry is None and {e.id for e in covered.covered_by} == {first.id, second.id}
    assert len(ledger.entries()) == 2


def test_a_window_spanning_a_covered_hole_is_requested(tmp_path) -> None:
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    chain.request(USDM, date(2024, 2, 1), date(2024, 2, 10))
    clock.advance(60)
    res = chain.request(USDM, date(2024, 1, 1), date(2024, 3, 31))  # one id for both gaps, across the hole
    assert [str(r) for r in res.plan.requests] == ["2024-01-01..2024-03-31"] and len(res) == 1
    assert client.creates[-1] == ("usdm", day_start_ms(date(2024, 1, 1)), day_end_ms(date(2024, 3, 31)))


def test_weekly_refresh_requests_the_previous_week_and_fills_a_skipped_one(tmp_path) -> None:
    assert refresh_range(date(2025, 3, 15)) == (date(2025, 3, 8), date(2025, 3, 14))
    assert refresh_range(date(2025, 3, 15), 3, last_covered=date(2025, 3, 1)) == (date(2025, 3, 2), date(2025, 3, 14))
    client, clock = FakeClient(), Clock()  # Saturday 2025-03-15
    chain = make_chain(tmp_path, client, clock)
    assert len(chain.refresh(USDM)) == 1
    clock.advance(7 * 86400)
    chain.refresh(USDM)
    clock.advance(14 * 86400)  # one weekly run was skipped
    chain.refresh(USDM)
    clock.advance(60)
    assert list(chain.refresh(USDM)) == []  # nothing new: no id spent
    days = [(day_of(a), day_of(b)) for _, a, b in client.creates]
    assert days == [
        (date(2025, 3, 8), date(2025, 3, 14)),
        (date(2025, 3, 15), date(2025, 3, 21)),
        (date(2025, 3, 22), date(2025, 4, 4)),
    ]


def _request_in_process(data_dir: str, barrier: Any, creates: Any) -> None:
    """One 'process' of the race below: its own ledger object, client and clock."""
    client = FakeClient()
    original = client.create_export

    def slow_create(*args: Any) -> dict[str, Any]:
        time.sleep(0.3)  # keep the call in flight while the other process plans and reserves
        return original(*args)

    client.create_export = slow_create  # type: ignore[method-assign]
    chain = make_chain(data_dir, client, Clock())
    barrier.wait()
    chain.request(USDM, date(2024, 1, 1), date(2024, 12, 31))
    with creates.get_lock():
        creates.value += len(client.creates)


def test_two_processes_never_both_spend_an_id_on_the_same_range(tmp_path) -> None:
    ctx = multiprocessing.get_context("fork")
    ExportLedger(tmp_path)
    barrier, creates = ctx.Barrier(3), ctx.Value("i", 0)
    procs = [ctx.Process(target=_request_in_process, args=(str(tmp_path), barrier, creates)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    entries = ExportLedger(tmp_path).entries()
    assert creates.value == 1 == len(entries) and entries[0].status == "processing"


def test_v1_ledger_is_migrated_in_place(tmp_path) -> None:
    from pipeline.exports import ledger as ledger_module

    v1 = ledger_module._SCHEMA
    for column in (
        "    parsed_rows     INTEGER,",
        "    utc_offset_minutes INTEGER,",
        "    file_name       TEXT",
        "    offset_source   TEXT",
        "    content_length  INTEGER",
        "    identity        TEXT",
    ):
        v1 = "\n".join(line for line in v1.splitlines() if not line.startswith(column))
    v1 = v1.replace("updated_at      INTEGER NOT NULL,", "updated_at      INTEGER NOT NULL")
    path = tmp_path / "state" / "export_ledger.sqlite"
    path.parent.mkdir()
    con = sqlite3.connect(path)
    con.executescript(v1)
    con.execute(
        "INSERT INTO entries (market, kind, api, account, start_ms, end_ms, requested_at, quota_month, "
        "status, download_id, updated_at) VALUES ('usdm', 'order', 'futures', 'main', 0, 1, 2, '2025-03', "
        "'processing', '42', 3)"
    )
    con.execute("PRAGMA user_version=1")
    con.commit()
    con.close()
    entry = ExportLedger(tmp_path).by_download_id("42")  # the spent id survives the upgrade
    assert (entry.status, entry.parsed_rows, entry.file_name) == ("processing", None, None)
    ExportLedger(tmp_path).update(entry.id, 4, "ingested", parsed_rows=7, utc_offset_minutes=480)
    with ExportLedger(tmp_path)._connect() as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == ledger_module.SCHEMA_VERSION
    assert ExportLedger(tmp_path).get(entry.id).utc_offset_minutes == 480


def test_attempt_is_on_disk_before_the_create_call(tmp_path) -> None:
    client, clock = FakeClient(), Clock()
    seen: list[tuple[str, int, int, str | None]] = []
    original = client.create_export

    def create(endpoint: Any, start_ms: int, end_ms: int) -> dict[str, Any]:
        seen.extend((e.status, e.start_ms, e.end_ms, e.download_id) for e in ExportLedger(tmp_path).entries())
        return original(endpoint, start_ms, end_ms)

    client.create_export = create  # type: ignore[method-assign]
    chain = make_chain(tmp_path, client, clock)
    [entry] = chain.request(USDM, date(2024, 1, 1), date(2024, 3, 31))
    assert seen == [("attempted", day_start_ms(date(2024, 1, 1)), day_end_ms(date(2024, 3, 31)), None)]
    assert (entry.status, entry.avg_cost_ms) == ("processing", 7_241_837)  # recorded right after the answer


def test_quota_is_counted_per_account(tmp_path) -> None:
    client, clock = FakeClient(), Clock()
    main = make_chain(tmp_path, client, clock, monthly_limit=1)
    other = ExportChain(client, ExportLedger(tmp_path), data_dir=tmp_path, account="other", now=clock, monthly_limit=1)
    main.request(USDM, date(2024, 1, 1), date(2024, 1, 31))
    clock.advance(60)
    with pytest.raises(QuotaWouldBeExceeded):
        main.request(USDM, date(2023, 1, 1), date(2023, 1, 31))
    assert len(other.request(USDM, date(2024, 1, 1), date(2024, 1, 31))) == 1  # same range, other account
    assert (main.quota(USDM).used, other.quota(USDM).used) == (1, 1) and len(client.creates) == 2

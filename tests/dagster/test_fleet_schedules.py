"""The fleet's schedules: a daily run per account for yesterday's spot partition, a monthly run per account for
last month's exports of the markets it trades, each tagged with its account and keyed so a tick repeats nothing."""

from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest

from assets.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from assets.definitions import build_definitions
from assets.fleet.definitions import JOB
from assets.fleet.tails import JOB as REST_JOB
from pipeline.settings import Settings

ACCOUNTS = Path(__file__).resolve().parents[1] / "support" / "accounts.toml"  # desk-a: every market; desk-b: spot


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    env = {"BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s", "ORDERLAKE_ACCOUNTS_FILE": str(ACCOUNTS)}
    return build_definitions(Settings.from_env(env))


def _tick(defs: dg.Definitions, name: str, when: datetime) -> list[dg.RunRequest] | dg.SkipReason:
    schedule = defs.resolve_schedule_def(name)
    assert schedule.job_name == JOB and schedule.execution_timezone == "UTC"
    return schedule(dg.build_schedule_context(scheduled_execution_time=when))


def test_every_day_one_spot_run_per_account_for_yesterday(defs: dg.Definitions) -> None:
    requests = _tick(defs, "fleet_daily_schedule", datetime(2024, 3, 1, 0, 15, tzinfo=UTC))
    assert isinstance(requests, list)
    assert [r.partition_key for r in requests] == ["desk-a|2024-02-29", "desk-b|2024-02-29"]
    assert [r.tags["orderlake/account"] for r in requests] == ["desk-a", "desk-b"]
    assert len({r.run_key for r in requests}) == 2
    assert all(
        {k.to_user_string() for k in r.asset_selection or []} == {"spot_orders", "spot_order_lists"} for r in requests
    )
    partitions = defs.resolve_job_def(JOB).partitions_def
    assert all(partitions.has_partition_key(r.partition_key) for r in requests)


def test_every_day_one_rest_tail_run_per_futures_account_for_yesterday(defs: dg.Definitions) -> None:
    schedule = defs.resolve_schedule_def("fleet_rest_daily_schedule")
    assert schedule.job_name == REST_JOB
    requests = schedule(dg.build_schedule_context(scheduled_execution_time=datetime(2024, 3, 1, 0, 15, tzinfo=UTC)))
    assert isinstance(requests, list)
    (request,) = requests  # desk-b trades spot only: no futures call for it
    assert (request.partition_key, request.tags["orderlake/account"]) == ("desk-a|2024-02-29", "desk-a")
    tails = {f"{p}_{k}" for p in ("futures", "pm_um") for k in ("orders_rest", "trades", "income")}
    assert {k.to_user_string() for k in request.asset_selection or []} == tails
    job = defs.resolve_job_def(REST_JOB)
    assert all(job.asset_layer.has(dg.AssetKey(k)) for k in tails)
    assert job.partitions_def.has_partition_key(request.partition_key)


def test_before_any_account_starts_the_daily_tick_skips(defs: dg.Definitions) -> None:
    skipped = _tick(defs, "fleet_daily_schedule", datetime(2024, 1, 1, 0, 15, tzinfo=UTC))
    assert isinstance(skipped, dg.SkipReason) and skipped.skip_message


def test_on_the_first_last_months_exports_of_the_accounts_that_trade_them(defs: dg.Definitions) -> None:
    requests = _tick(defs, "fleet_monthly_exports_schedule", datetime(2024, 3, 1, 0, 15, tzinfo=UTC))
    assert isinstance(requests, list)
    (request,) = requests  # desk-b trades spot only: no export, no download id
    assert request.tags["orderlake/account"] == "desk-a"
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("desk-a|2024-02-01", "desk-a|2024-02-29")
    assert {k.to_user_string() for k in request.asset_selection or []} == {"futures_orders", "pm_um_orders"}
    assert request.run_key == "fleet-exports-desk-a-2024-02"


def test_the_first_month_starts_at_the_accounts_start_date() -> None:
    from assets.fleet.schedules import monthly_export_requests
    from pipeline.accounts import Account, Fleet

    fleet = Fleet((Account("late", markets=("usdm",), start_date=date(2024, 2, 10)),))
    (request,) = monthly_export_requests(fleet, date(2024, 3, 1))
    assert request.tags[RANGE_START_TAG] == "late|2024-02-10"
    assert monthly_export_requests(fleet, date(2024, 2, 1)) == []  # January: before its start

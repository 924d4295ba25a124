"""The export-needs schedule that replaced the weekly export schedule: nothing while REST covers every day, one
request for the days the daily run missed for longer than REST keeps them, of the markets that missed them."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg

from assets.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from assets.definitions import build_definitions
from pipeline.futures import state
from pipeline.settings import Settings
from pipeline.times import days_between

TICK = datetime(2026, 3, 20, 0, 45, tzinfo=UTC)


def _evaluate(defs: dg.Definitions):
    schedule = defs.resolve_schedule_def("export_needs_schedule")
    with dg.build_schedule_context(scheduled_execution_time=TICK, resources={"lake": defs.resources["lake"]}) as ctx:
        return schedule.evaluate_tick(ctx)


def test_export_needs_schedule_asks_only_for_days_rest_can_no_longer_give(tmp_path) -> None:
    defs = build_definitions(Settings(data_dir=tmp_path, start_date=date(2026, 1, 1)))
    assert defs.resolve_schedule_def("export_needs_schedule").cron_schedule == "45 0 * * *"
    assert not _evaluate(defs).run_requests  # a fresh lake: older history is a backfill's decision
    today = TICK.date()
    missed = today - timedelta(days=6)
    days = {d for d in days_between(today - timedelta(days=30), today - timedelta(days=1)) if d != missed}
    for market in ("usdm", "pm_um"):
        state.update(tmp_path, "main", market, lambda s: state.add_days(s, days))
    [req] = _evaluate(defs).run_requests
    assert (req.tags[RANGE_START_TAG], req.tags[RANGE_END_TAG]) == (missed.isoformat(), missed.isoformat())
    assert set(req.asset_selection) == {dg.AssetKey("futures_order_exports"), dg.AssetKey("pm_um_order_exports")}


def test_export_needs_schedule_asks_only_the_market_that_needs_the_export(tmp_path) -> None:
    defs = build_definitions(Settings(data_dir=tmp_path, start_date=date(2026, 1, 1)))
    today = TICK.date()
    missed = today - timedelta(days=6)
    days = {d for d in days_between(today - timedelta(days=30), today - timedelta(days=1)) if d != missed}
    state.update(tmp_path, "main", "usdm", lambda s: state.add_days(s, days))
    state.update(tmp_path, "main", "pm_um", lambda s: state.add_days(s, days | {missed}))  # PM's REST ran that day
    [req] = _evaluate(defs).run_requests
    assert req.asset_selection == [dg.AssetKey("futures_order_exports")]
    assert (req.tags[RANGE_START_TAG], req.tags[RANGE_END_TAG]) == (missed.isoformat(), missed.isoformat())

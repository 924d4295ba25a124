"""`orderlake status`, futures section: which source covers which days, open orders, ids spent and planned."""

from datetime import UTC, date, datetime, timedelta

from pipeline.futures import state
from pipeline.futures.status import futures_status_lines
from pipeline.storage.schemas import futures_orders
from pipeline.storage.versions import write_day
from pipeline.times import day_start_ms, days_between
from tests.unit.test_futures_plan import NOW, TODAY, _exported

ORDER = {
    "symbol": "BTCUSDT",
    "orderId": 7,
    "clientOrderId": "x",
    "price": "1",
    "avgPrice": "0",
    "origQty": "1",
    "executedQty": "0",
    "cumQuote": "0",
    "status": "NEW",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
}


def test_status_names_the_source_of_every_day_and_what_is_pending(tmp_path) -> None:
    assert futures_status_lines(tmp_path, "main", now_ms=NOW, start_date=TODAY) == []  # nothing to report
    day = TODAY - timedelta(days=5)
    t = day_start_ms(day) + 60_000
    rows = futures_orders.from_api(
        [{**ORDER, "time": t, "updateTime": t}],
        account="main",
        market="usdm",
        source="x",
        ingested_at=datetime.now(UTC),
    )
    write_day(tmp_path, "futures_orders", "main", day, rows)
    _exported(tmp_path, "usdm", TODAY - timedelta(days=20), TODAY - timedelta(days=11))
    state.update(
        tmp_path,
        "main",
        "usdm",
        lambda s: state.add_days(s, set(days_between(TODAY - timedelta(days=4), TODAY - timedelta(days=1)))),
    )
    text = "\n".join(futures_status_lines(tmp_path, "main", now_ms=NOW, start_date=date(2026, 5, 20)))
    assert "    rest      2026-06-06..2026-06-09 (4 d)" in text
    assert "    export    2026-05-21..2026-05-30 (10 d)" in text
    assert "    lake only 2026-06-05" in text
    assert "    missing   2026-05-20, 2026-05-31..2026-06-04 (5 d)" in text
    assert "awaiting a final state: 1 open order(s); 0 vanished from REST" in text
    assert "download ids 2026-06: 1 spent, 0 planned" in text  # usdm: the export above
    assert text.count("0 spent, 0 planned") == 1  # PM UM

"""The generated account: deterministic from the seed, and realistic in the ways that break naive backfills."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.core import Exchange, Params

DAY = 86_400_000
NOW = 1_760_000_000_000  # a fixed "now": with it, the account depends on the seed alone


def _truth(**overrides) -> dict:
    return Exchange(SandboxConfig(now_ms=NOW).with_overrides(**overrides)).truth()


def test_same_seed_same_account_other_seed_other_account() -> None:
    small = {
        "listed_symbols": 40,
        "active_symbols": 4,
        "history_days": 20,
        "busy_day_orders": 50,
        "futures_history_days": 20,
    }
    a, b = _truth(seed=11, **small), _truth(seed=11, **small)
    assert a == b
    c = _truth(seed=12, **small)
    assert c["spot_orders"] != a["spot_orders"] and c["usdm_orders"] != a["usdm_orders"]


def test_default_account_is_realistic() -> None:
    ex = Exchange(SandboxConfig(now_ms=NOW))
    truth = ex.truth()
    orders = truth["spot_orders"] + truth["delisted_orders"]
    assert len(truth["listed"]) == 300 and len(truth["active"]) == 12  # hundreds listed, a dozen traded
    assert {o["type"] for o in orders} >= {"LIMIT", "MARKET", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"}
    # every status an order history can hold (PENDING_CANCEL is documented as unused); PENDING_NEW is the pending
    # leg of an OTO list
    assert set(Counter(o["status"] for o in orders)) == {
        "NEW",
        "PENDING_NEW",
        "PARTIALLY_FILLED",
        "FILLED",
        "CANCELED",
        "REJECTED",
        "EXPIRED",
        "EXPIRED_IN_MATCH",
    }
    kinds = Counter((lst["contingencyType"], lst["listOrderStatus"]) for lst in truth["spot_order_lists"])
    assert {("OCO", "ALL_DONE"), ("OCO", "EXECUTING"), ("OTO", "ALL_DONE"), ("OTO", "EXECUTING")} <= set(kinds)
    legs = {(o["symbol"], o["orderId"]): o for o in orders}
    for lst in truth["spot_order_lists"]:
        first, second = (legs[(leg["symbol"], leg["orderId"])] for leg in lst["orders"])
        if lst["contingencyType"] == "OTO" and lst["listOrderStatus"] == "EXECUTING":
            assert (first["status"], second["status"]) == ("NEW", "PENDING_NEW")
            assert second["isWorking"] is False and second["workingTime"] == -1
    decimals = {len(o["price"].split(".")[1].rstrip("0")) for o in orders}
    assert max(decimals) == 8  # some prices need all 8 decimals
    assert sum(o["updateTime"] // DAY > o["time"] // DAY for o in orders) > 100
    per_day = Counter((o["symbol"], o["updateTime"] // DAY) for o in truth["spot_orders"])
    assert max(per_day.values()) > 1000  # one symbol-day needs paging
    assert all(o["orderId"] > 2**53 for o in truth["usdm_orders"] + truth["pm_um_orders"])
    archived = [o for o in truth["spot_orders"] if o["archived"]]
    assert archived and all(o["updateTime"] < NOW - 90 * DAY for o in archived)
    (delisted,) = truth["delisted"]
    assert truth["delisted_orders"] and delisted not in ex.exchange_info_index
    assert {o["symbol"] for o in truth["delisted_orders"]} == {delisted}
    for o in orders:
        assert Decimal(o["executedQty"]) <= Decimal(o["origQty"]) and o["updateTime"] >= o["time"]


def test_download_ids_never_repeat_across_restarts() -> None:
    """`make run` restarts the sandbox with the same seed; on a later day it asks an export for the new days, and
    an id of the first run's coming back would break the ledger (Binance never reissues a download id)."""
    small = SandboxConfig(now_ms=NOW, listed_symbols=10, active_symbols=2, history_days=2, futures_history_days=5)
    window = Params({"startTime": str(NOW - 3 * DAY), "endTime": str(NOW - DAY - 1)})
    first, again = (Exchange(small).export_create(window, "usdm")["downloadId"] for _ in range(2))
    assert first != again

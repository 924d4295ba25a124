"""pipeline.futures.reconcile: REST rows against stored export rows, one code for orders, trades and income."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow as pa

from pipeline.futures.reconcile import INCOME, ORDERS, TRADES, Reconciliation, compare, export_rows

T = datetime(2026, 11, 30, 10, 0, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def _trade(trade_id: int, **kw) -> dict:
    row = dict.fromkeys(TRADES.columns) | {"symbol": "BTCUSDT", "trade_id": trade_id, "order_id": 7, "time": T}
    return row | {"price": Decimal("100.5"), "qty": Decimal("0.002"), "commission": Decimal("0.01")} | kw


def test_trades_every_decimal_and_the_time_to_the_second() -> None:
    rest = TRADES.keyed([_trade(1, time=T + 420 * MS), _trade(2), _trade(3, qty=Decimal("0.003")), _trade(4)])
    exported = TRADES.keyed(
        [
            _trade(1),  # the export prints whole seconds: the same time
            _trade(2, time=T - 1000 * MS),  # a second earlier: another time
            _trade(3),
            _trade(4, is_maker=None),  # a column the file did not carry is not compared
            _trade(5),  # REST asked its window but did not return it
            _trade(6),  # REST did not ask for it
        ]
    )
    out = Reconciliation(TRADES)
    compare(exported, rest, lambda r: r["trade_id"] != 6, out)
    got = [(m.key["trade_id"], m.column, m.export, m.rest) for m in out.mismatches]
    assert got == [
        (2, "time", T - 1000 * MS, T),
        (3, "qty", Decimal("0.002"), Decimal("0.003")),
        (5, "count", "in export", "missing from REST"),
    ]
    assert out.metadata()["trades_compared"] == 4 and out.metadata()["mismatched_trades"] == 3
    assert out.metadata()["mismatches"][0] == {
        "symbol": "BTCUSDT",
        "trade_id": "2",
        "column": "time",
        "export": str(T - 1000 * MS),
        "rest": str(T),
    }


def test_orders_another_version_is_no_mismatch() -> None:
    base = dict.fromkeys(ORDERS.columns) | {"symbol": "ETHUSDT", "order_id": 9, "time": T, "update_time": T}
    exported = ORDERS.keyed([base | {"status": "NEW"}])
    later = base | {"status": "FILLED", "update_time": T + timedelta(hours=1)}
    out = Reconciliation(ORDERS)
    compare(exported, ORDERS.keyed([later]), lambda r: True, out)
    assert out.mismatches == [] and out.compared == 0
    compare(exported, ORDERS.keyed([base | {"status": "CANCELED"}]), lambda r: True, out)
    assert [(m.column, m.export, m.rest) for m in out.mismatches] == [("status", "NEW", "CANCELED")]
    assert set(out.metadata()) == {"orders_compared", "mismatched_orders", "mismatches"}


def test_income_rows_are_named_by_their_whole_key_and_only_export_rows_count() -> None:
    row = {"income_type": "COMMISSION", "tran_id": 5, "asset": "BNB", "symbol": "BTCUSDT", "info": "", "time": T}
    row |= {"income": Decimal("-0.1"), "trade_id": "77"}
    stored = pa.Table.from_pylist(
        [
            row | {"source": "export_income_csv"},
            row | {"tran_id": 6, "source": "rest"},
            row | {"tran_id": 8, "source": "export"},
        ]
    )
    exported = export_rows(stored, INCOME)
    assert sorted(exported) == [("COMMISSION", 5, "BNB"), ("COMMISSION", 8, "BNB")]  # the older name counts too
    out = Reconciliation(INCOME)
    compare(exported, INCOME.keyed([row | {"income": Decimal("-0.2")}]), lambda r: False, out)
    assert [m.to_dict() for m in out.mismatches] == [
        {
            "income_type": "COMMISSION",
            "tran_id": "5",
            "asset": "BNB",
            "column": "income",
            "export": "-0.1",
            "rest": "-0.2",
        }
    ]
    assert out.metadata()["records_compared"] == 1

"""The partition quality rules catch each kind of bad row and pass clean partitions."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa

from pipeline import quality

DAY = date(2026, 3, 4)
D = pa.decimal128(38, 8)
SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("order_id", pa.int64()),
        ("status", pa.string()),
        ("type", pa.string()),
        ("orig_qty", D),
        ("executed_qty", D),
        ("cummulative_quote_qty", D),
        ("update_time", pa.timestamp("ms", tz="UTC")),
    ]
)


def _row(order_id: int, **over):
    row = {
        "symbol": "BTCUSDT",
        "order_id": order_id,
        "status": "FILLED",
        "type": "LIMIT",
        "orig_qty": Decimal("1.5"),
        "executed_qty": Decimal("1.5"),
        "cummulative_quote_qty": Decimal("-1"),  # Binance's "not available": allowed
        "update_time": datetime(2026, 3, 4, 12, tzinfo=UTC),
    }
    row.update(over)
    return row


def _failed(rows) -> dict[str, int]:
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    return {r.name: r.violations for r in quality.spot_order_rules(table, DAY) if not r.passed}


def test_clean_partition_passes_every_rule():
    assert _failed([_row(1), _row(2)]) == {}
    assert _failed([]) == {}


def test_each_rule_catches_its_fault():
    assert _failed([_row(1), _row(1)]) == {"unique (symbol, order_id)": 1}
    late = _row(3, update_time=datetime(2026, 3, 5, 0, 0, tzinfo=UTC))
    assert _failed([late]) == {"update_time inside the partition's UTC day": 1}
    assert _failed([_row(4, executed_qty=Decimal("2"))]) == {"executed_qty <= orig_qty": 1}
    assert _failed([_row(5, orig_qty=Decimal("-1"), executed_qty=Decimal("-2"))]) == {"decimals non-negative": 2}
    assert _failed([_row(6, status="WEIRD")]) == {"statuses and types in their enums": 1}

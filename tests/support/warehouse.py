"""Helpers for the warehouse tests: hand-made lake partitions.

Rows are snake_case dicts typed with the table's storage Arrow schema, so the tests exercise the real schema.
Partitions are written with pipeline.storage.lake.write_partition; :func:`write_raw` skips its validation for the
schema-evolution tests, which write columns the storage schema does not know.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.settings import Settings
from pipeline.spot.index import SymbolIndex
from pipeline.storage import lake, lakefs
from pipeline.warehouse import catalog
from pipeline.warehouse.symbols import record_futures_exchange_info


def table_schema(table: str) -> pa.Schema:
    schema = catalog.storage_schema(table)
    if "date" in schema.names:
        schema = schema.remove(schema.get_field_index("date"))
    return schema


def ms(text: str) -> int:
    """'2024-01-02T03:04:05' (UTC) -> epoch ms."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def _coerce(value: Any, typ: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_timestamp(typ) and isinstance(value, int):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if pa.types.is_decimal(typ) and not isinstance(value, Decimal):
        return Decimal(str(value))
    return value


def make_table(table: str, rows: Iterable[dict[str, Any]], extra: dict[str, pa.DataType] | None = None) -> pa.Table:
    schema = table_schema(table)
    for name, typ in (extra or {}).items():
        schema = schema.append(pa.field(name, typ))
    rows = [{f.name: _coerce(r.get(f.name), f.type) for f in schema} for r in rows]
    return pa.Table.from_pylist(rows, schema=schema)


def write(
    data_dir: Path,
    table: str,
    account: str,
    day: date,
    rows: Iterable[dict[str, Any]],
    extra: dict[str, pa.DataType] | None = None,
) -> Path:
    tbl = make_table(table, rows, extra)
    if extra:
        return write_raw(data_dir, table, account, day, tbl)
    return Path(lake.write_partition(data_dir, table, account, day, tbl).path)


def write_raw(data_dir: Path, table: str, account: str, day: date, tbl: pa.Table) -> Path:
    """Atomic write without schema validation (schema-evolution tests write columns storage doesn't know)."""
    part = Path(data_dir) / "lake" / table / f"account={account}" / f"date={day.isoformat()}"
    part.mkdir(parents=True, exist_ok=True)
    tmp = part / f".part-0.{os.getpid()}.tmp"
    pq.write_table(tbl, tmp)
    os.replace(tmp, part / "part-0.parquet")
    return part / "part-0.parquet"


def spot_row(
    order_id: int,
    *,
    symbol: str = "BTCUSDT",
    account: str = "main",
    status: str = "FILLED",
    price: str = "100",
    qty: str = "1",
    executed: str | None = None,
    quote: str | None = None,
    time: str = "2024-01-01T10:00:00",
    update: str | None = None,
    side: str = "BUY",
    ingested: str = "2024-03-01T00:00:00",
    **extra: Any,
) -> dict[str, Any]:
    executed = qty if executed is None else executed
    if quote is None:
        quote = str(Decimal(price) * Decimal(executed))
    row = {
        "account": account,
        "symbol": symbol,
        "order_id": order_id,
        "order_list_id": -1,
        "client_order_id": f"c{order_id}",
        "price": Decimal(price),
        "orig_qty": Decimal(qty),
        "executed_qty": Decimal(executed),
        "cummulative_quote_qty": Decimal(quote),
        "status": status,
        "time_in_force": "GTC",
        "type": "LIMIT",
        "side": side,
        "stop_price": Decimal(0),
        "iceberg_qty": Decimal(0),
        "time": ms(time),
        "update_time": ms(update or time),
        "is_working": True,
        "orig_quote_order_qty": Decimal(0),
        "self_trade_prevention_mode": "NONE",
        "source": "rest_allOrders",
        "ingested_at": ms(ingested),
        "working_time": ms(time),
    }
    row.update(extra)
    return row


def futures_row(
    order_id: int,
    *,
    symbol: str = "BTCUSDT",
    account: str = "main",
    market: str = "usdm",
    status: str = "FILLED",
    price: str = "100",
    qty: str = "1",
    executed: str | None = None,
    avg: str | None = None,
    time: str = "2024-01-01T10:00:00",
    update: str | None = None,
    side: str = "SELL",
    ingested: str = "2024-03-01T00:00:00",
) -> dict[str, Any]:
    executed = qty if executed is None else executed
    avg = (price if Decimal(executed) > 0 else "0") if avg is None else avg
    return {
        "account": account,
        "market": market,
        "symbol": symbol,
        "order_id": order_id,
        "client_order_id": f"f{order_id}",
        "price": Decimal(price),
        "avg_price": Decimal(avg),
        "orig_qty": Decimal(qty),
        "executed_qty": Decimal(executed),
        "cum_quote": Decimal(avg) * Decimal(executed),
        "status": status,
        "time_in_force": "GTC",
        "type": "LIMIT",
        "orig_type": "LIMIT",
        "side": side,
        "position_side": "BOTH",
        "stop_price": Decimal(0),
        "reduce_only": False,
        "close_position": False,
        "time": ms(time),
        "update_time": ms(update or time),
        "source": "export_order_csv",
        "ingested_at": ms(ingested),
    }


def order_list_row(
    order_list_id: int,
    *,
    symbol: str = "BTCUSDT",
    account: str = "main",
    time: str = "2024-01-01T10:00:00",
    members: tuple[int, ...] = (1, 2),
    ingested: str = "2024-03-01T00:00:00",
) -> dict[str, Any]:
    """An OCO list row of ``spot_order_lists`` (its ``orders`` column is a list of structs)."""
    return {
        "account": account,
        "symbol": symbol,
        "order_list_id": order_list_id,
        "contingency_type": "OCO",
        "list_status_type": "ALL_DONE",
        "list_order_status": "ALL_DONE",
        "list_client_order_id": f"l{order_list_id}",
        "transaction_time": ms(time),
        "source": "rest_allOrderList",
        "ingested_at": ms(ingested),
        "orders": [{"symbol": symbol, "order_id": m, "client_order_id": f"c{m}"} for m in members],
    }


def day_of(text: str) -> date:
    return datetime.fromisoformat(text).date()


# -- concurrent writer for the BI read-path test (runs in a separate, spawned process) -------------------------------
BI_DAYS = [date(2024, 1, d) for d in range(1, 5)]
BI_STATES = (3, 5)  # rows per partition in state A / state B


def bi_rows(day: date, n: int) -> list[dict[str, Any]]:
    """n orders on ``day``; order i has price i+1, so a partition's sum(price) is n(n+1)/2: a torn read shows."""
    return [
        spot_row(day.day * 100 + i, price=str(i + 1), qty="0.5", time=f"{day.isoformat()}T{i:02d}:00:00")
        for i in range(n)
    ]


def bi_writer(data_dir: str, lake_env: dict[str, str], stop: Any, rewrites: Any, swaps: Any) -> None:
    """Rewrite partitions (alternating row counts) and rebuild + swap the catalog until ``stop`` is set; the lake
    is the one ``lake_env`` names (tests/support/lake_files.py's ``lake_environment``), as an orderlake process's."""
    data = Path(data_dir)
    lakefs.configure(Settings.from_env({"ORDERLAKE_DATA_DIR": data_dir, **lake_env}))
    i = 0
    while not stop.is_set():
        day = BI_DAYS[i % len(BI_DAYS)]
        write(data, "spot_orders", "main", day, bi_rows(day, BI_STATES[(i // len(BI_DAYS) + 1) % 2]))
        write(data, "futures_orders", "main", day, [futures_row(day.day, time=f"{day.isoformat()}T01:00:00")])
        with rewrites.get_lock():
            rewrites.value += 1
        if i % 2 == 0:
            catalog.build_catalog(data)
            with swaps.get_lock():
                swaps.value += 1
        i += 1


# -- one row in every table, with the values that break unfaithful readers --------------------------------------------
BIG_ID = 2**60 + 7  # futures ids exceed 2^53
# 17 significant digits: a double cannot hold cum_quote = price * qty = 121932631112.63526 exactly
BIG_PRICE, BIG_QTY = "98765432.1", "1234.5678"


def record_assets(
    data_dir: Path,
    spot: dict[str, tuple[str, str]] | None = None,
    futures: dict[str, tuple[str, str, str]] | None = None,
    account: str = "main",
) -> None:
    """What exchangeInfo told the pipeline, written the way the pipeline writes it: spot (base, quote) into the
    symbol index, futures (base, quote, margin) into the futures symbol file."""
    if spot:
        index = SymbolIndex.load(data_dir, account)
        for symbol, (base, quote) in spot.items():
            act = index.get(symbol)
            act.status, act.base_asset, act.quote_asset = "listed", base, quote
        index.save()
    if futures:
        info = {
            "symbols": [
                {"symbol": s, "baseAsset": b, "quoteAsset": q, "marginAsset": m} for s, (b, q, m) in futures.items()
            ]
        }
        record_futures_exchange_info(data_dir, info, ms("2024-01-01T00:00:00"))


def write_every_table(data_dir: Path, day: date = date(2024, 1, 1)) -> Path:
    """Rows in every lake table, so every view has rows: ids beyond 2^53 (also inside the order lists' members) and
    decimals a double cannot hold; the symbols' assets recorded."""
    record_assets(
        data_dir, {"BTCUSDT": ("BTC", "USDT"), "ETHBTC": ("ETH", "BTC")}, {"BTCUSDT": ("BTC", "USDT", "USDT")}
    )
    at = f"{day.isoformat()}T10:00:00"
    write(
        data_dir,
        "spot_orders",
        "main",
        day,
        [spot_row(1, time=at), spot_row(2, symbol="ETHBTC", price="0.05", qty="2", time=at)],
    )
    open_order = {**spot_row(3, status="NEW", executed="0", quote="0", time=at), "snapshot_time": ms(at)}
    write(data_dir, "spot_open_orders", "main", day, [open_order])
    write(data_dir, "spot_order_lists", "main", day, [order_list_row(BIG_ID, time=at, members=(BIG_ID + 1, 1))])
    write(data_dir, "futures_orders", "main", day, [futures_row(BIG_ID, price=BIG_PRICE, qty=BIG_QTY, time=at)])
    write(data_dir, "pm_um_orders", "main", day, [futures_row(BIG_ID + 2, market="pm_um", time=at)])
    write(data_dir, "spot_trades", "main", day, [spot_trade_row(BIG_ID + 3, order_id=1, time=at)])
    for market, trades, income in (
        ("usdm", "futures_trades", "futures_income"),
        ("pm_um", "pm_um_trades", "pm_um_income"),
    ):
        trade = {**spot_trade_row(BIG_ID + 4, order_id=BIG_ID, time=at), "market": market, "side": "SELL"}
        trade |= {"position_side": "BOTH", "realized_pnl": "-12345678.12345678", "pnl_asset": "USDT"}
        write(data_dir, trades, "main", day, [trade])
        write(data_dir, income, "main", day, [income_row(BIG_ID + 5, market=market, time=at)])
    return data_dir


def income_row(tran_id: int, *, market: str, time: str, kind: str = "REALIZED_PNL") -> dict[str, Any]:
    return {
        "account": "main",
        "market": market,
        "income_type": kind,
        "tran_id": tran_id,
        "asset": "USDT",
        "symbol": "BTCUSDT",
        "income": "-12345678.12345678",
        "info": "",
        "trade_id": str(BIG_ID + 4),
        "time": ms(time),
        "source": "rest_income",
        "ingested_at": ms(time),
    }


def spot_trade_row(trade_id: int, *, order_id: int, time: str, symbol: str = "BTCUSDT") -> dict[str, Any]:
    """A fill of a double-breaking size: quote_qty = price * qty has 17 significant digits."""
    return {
        "account": "main",
        "symbol": symbol,
        "trade_id": trade_id,
        "order_id": order_id,
        "order_list_id": -1,
        "price": BIG_PRICE,
        "qty": BIG_QTY,
        "quote_qty": "121932631112.63526",
        "commission": "0.00012345",
        "commission_asset": "BNB",
        "base_asset": "BTC",
        "quote_asset": "USDT",
        "time": ms(time),
        "is_buyer": True,
        "is_maker": False,
        "is_best_match": True,
        "source": "rest_myTrades",
        "ingested_at": ms(time),
    }

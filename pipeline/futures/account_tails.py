"""One account's USDⓈ-M or PM UM REST tails from its client: orders, trades and income over a list of days.

What each tail needs before it runs (the server's time, the listed symbols, symbol discovery) is asked here, once per
tail, so the single-account assets and the fleet's account x day assets run the same calls in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import pyarrow as pa

from pipeline.binance.client import BinanceClient
from pipeline.futures.discovery import discover_futures_symbols
from pipeline.futures.orders_tail import OrdersTailResult, run_futures_orders_tail
from pipeline.times import day_start_ms
from pipeline.trades.futures_tail import FuturesTailResult, run_futures_income_tail, run_futures_trades_tail

OnWritten = Callable[[date, pa.Table], None] | None


def _api(client: BinanceClient, market: str):
    return client.futures if market == "usdm" else client.papi


def orders_tail(
    client: BinanceClient,
    market: str,
    *,
    data_dir: Path | str,
    account: str,
    days: Sequence[date],
    configured: tuple[str, ...] = (),
    on_written: OnWritten = None,
    log: Callable[[str], None] = print,
) -> OrdersTailResult:
    """The orders created on ``days`` that REST still serves, and the lake's open orders refreshed."""
    api = _api(client, market)
    now = client.futures.server_time()
    listed = [s["symbol"] for s in client.futures.exchange_info().get("symbols", [])]  # sets fapi's limits
    found = discover_futures_symbols(
        api,
        market=market,
        data_dir=data_dir,
        account=account,
        now_ms=now,
        since_ms=day_start_ms(min(days)),
        configured=configured,
        listed=listed,
        log=log,
    )
    result = run_futures_orders_tail(
        api,
        market=market,
        data_dir=data_dir,
        account=account,
        days=list(days),
        now_ms=now,
        symbols=found.symbols,
        symbolless=bool(found.symbolless),
        on_written=on_written,
        log=log,
    )
    if result.symbolless is False:  # refused after all: the next run discovers symbols
        log(f"{market}: symbol-less allOrders refused (-1102); discovery takes over")
    return result


def trades_or_income_tail(
    client: BinanceClient,
    market: str,
    kind: str,
    *,
    data_dir: Path | str,
    account: str,
    days: Sequence[date],
    on_written: OnWritten = None,
    log: Callable[[str], None] = print,
) -> FuturesTailResult:
    """``kind`` "trades": the fills of the lake's filled orders; "income": the income ledger; on ``days``."""
    api = _api(client, market)
    common = {
        "market": market,
        "data_dir": data_dir,
        "account": account,
        "days": list(days),
        "now_ms": client.futures.server_time(),
        "on_written": on_written,
        "log": log,
    }
    if kind == "income":
        return run_futures_income_tail(api, **common)
    info = client.futures.exchange_info().get("symbols", [])
    assets = {s["symbol"]: (s.get("baseAsset"), s.get("quoteAsset"), s.get("marginAsset")) for s in info}
    return run_futures_trades_tail(api, assets=assets, **common)

"""Deterministic generation of the sandbox account (spot orders, OCO lists, USDⓈ-M and PM UM futures orders).

Everything is derived from ``SandboxConfig.seed`` and ``now_ms``. Money is exact: prices and quantities are
integers on a decimal tick (price decimals + quantity decimals <= 8), so every product (cummulativeQuoteQty,
cumQuote) is exact and formats as a decimal string without rounding.
"""

from __future__ import annotations

from pipeline.sandbox.books import Account
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.futures_history import futures_history
from pipeline.sandbox.spot_history import SpotHistory
from pipeline.sandbox.spot_trades import generate_spot_trades


def generate_account(cfg: SandboxConfig, now_ms: int) -> Account:
    gen = SpotHistory(cfg, now_ms)
    symbols, listed, active, delisted, books, order_lists, busy = gen.generate()
    balances, hidden = gen.balances(symbols, active)
    acct = Account(
        cfg=cfg,
        now_ms=now_ms,
        symbols=symbols,
        listed=listed,
        active=active,
        hidden_active=hidden,
        delisted=delisted,
        books=books,
        order_lists=order_lists,
        balances=balances,
        usdm=futures_history(cfg, now_ms, "usdm"),
        pm_um=futures_history(cfg, now_ms, "pm_um"),
        busy_day=busy,
        spot_trades=generate_spot_trades(cfg.seed, symbols, books),
    )
    acct.index_lists()
    return acct

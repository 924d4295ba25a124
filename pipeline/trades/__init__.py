"""Trades and income: the fills and cash flows behind the orders (spot ``myTrades``; futures and PM ``userTrades``
and ``income``). Design: docs/design/trades.md."""

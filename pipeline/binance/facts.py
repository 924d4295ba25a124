"""The Binance facts orderlake relies on, in one table: request windows, retention, page sizes, weights, rate
limits, export quotas and link lifetimes.

Every value is "true when last seen" and names the section of ``docs/binance-facts.md`` that gives its public
source (and its UNCONFIRMED mark, where the evidence is thin). Where sources disagree the table holds the
conservative value, and the code that reads it must still work under the other one. The client, the planners,
the status report and the sandbox all read these names instead of keeping their own copies.
"""

from __future__ import annotations

from typing import Final

from pipeline.times import DAY_MS

# -- request windows ----------------------------------------------------------------------------------------------
# docs/binance-facts.md §Spot allOrders, §Spot allOrderList: startTime..endTime spans at most 24 h (-1127 beyond); both
# ends inclusive.
SPOT_WINDOW_MS: Final = DAY_MS
# docs/binance-facts.md §USDⓈ-M allOrders, §PM UM allOrders: the window must be shorter than 7 days (-4165) on the
# English pages, at most 7 days on the Chinese one. `symbol` is mandatory on the pages and in the SDKs, reported
# optional since 2026-08 on USDⓈ-M: a caller that omits it must handle the "symbol required" answer.
FUTURES_WINDOW_MS: Final = 7 * DAY_MS
# The longest window valid under both readings: [start, start + 7 days - 1 ms] spans 7 days minus 1 ms.
FUTURES_SAFE_WINDOW_MS: Final = FUTURES_WINDOW_MS - 1
# docs/binance-facts.md §Export download ids and quotas: endTime - startTime must not exceed 1 year. What a "year" is
# (365 days, a calendar year, 366 in a leap year) is undocumented, so a window holds at most 365 whole UTC days.
EXPORT_MAX_SPAN_DAYS: Final = 365
# docs/binance-facts.md §Spot allOrders, §USDⓈ-M allOrders: `limit` is at most 1000 rows (spot allOrderList too).
PAGE_LIMIT: Final = 1000

# -- retention ----------------------------------------------------------------------------------------------------
# docs/binance-facts.md §Retention: spot CANCELED/EXPIRED/EXPIRED_IN_MATCH orders with zero fill are archived after 90
# days (-2026) and allOrders no longer returns them.
SPOT_ZERO_FILL_ARCHIVE_DAYS: Final = 90
# docs/binance-facts.md §Retention: futures REST forgets every order created more than 90 days ago, and CANCELED/EXPIRED
# orders with zero fill created more than 3 days ago. Older orders only come from the exports.
FUTURES_REST_RETENTION_DAYS: Final = 90
FUTURES_ZERO_FILL_RETENTION_DAYS: Final = 3

# -- weights --------------------------------------------------------------------------------------------------------
# docs/binance-facts.md §Rate limits and weights: REST and WS API price a spot method alike. Keys are the client's
# method names; open_orders costs 6 for one symbol and 80 for all; myTrades 20, or 5 with orderId.
SPOT_WEIGHTS: Final[dict[str, int]] = {
    "time": 1,
    "exchange_info": 20,
    "account": 20,
    "all_orders": 20,
    "all_order_lists": 20,
    "open_orders_symbol": 6,
    "open_orders_all": 80,
    "open_order_lists": 6,
    "order": 4,
    "order_list": 4,
    "my_trades": 20,
    "my_trades_order": 5,
}
# docs/binance-facts.md §Rate limits and weights: opening a WS API connection costs 2 weight.
WS_CONNECT_WEIGHT: Final = 2
# docs/binance-facts.md §Rate limits and weights: futures time and exchangeInfo 1, USDⓈ-M and PM UM allOrders 5.
FUTURES_TIME_WEIGHT: Final = 1
FUTURES_EXCHANGE_INFO_WEIGHT: Final = 1
FUTURES_ALL_ORDERS_WEIGHT: Final = 5
# docs/binance-facts.md §USDⓈ-M weights: one order 1 (both surfaces), open orders 1 with `symbol` and 40 without,
# income 30, the account's positions 5 (/fapi/v3/account; /papi/v1/um/account UNCONFIRMED).
FUTURES_ORDER_WEIGHT: Final = 1
FUTURES_OPEN_ORDERS_WEIGHT: Final[dict[str, int]] = {"symbol": 1, "all": 40}
FUTURES_INCOME_WEIGHT: Final = 30
FUTURES_ACCOUNT_WEIGHT: Final = 5

# -- rate limits ----------------------------------------------------------------------------------------------------
# docs/binance-facts.md §Rate limits and weights, §PM rate limit: REQUEST_WEIGHT per minute per IP, per limiter group,
# used until exchangeInfo, the response headers or a 429's text say otherwise. Spot 6000 and USDⓈ-M 2400 are documented;
# the Portfolio Margin figure (6000) is UNCONFIRMED (quoted by third parties, no exchangeInfo to read it from).
WEIGHT_PER_MINUTE: Final[dict[str, int]] = {"spot": 6000, "futures": 2400, "papi": 6000}
# docs/binance-facts.md §Rate-limit responses: 429, 418 and Retry-After: a 418 ban lasts from 2 minutes up to 3 days for
# repeat offenders; its answer says until when.
IP_BAN_MIN_MS: Final = 2 * 60_000
IP_BAN_MAX_MS: Final = 3 * DAY_MS
# docs/binance-facts.md §Timestamps and recvWindow: recvWindow may not exceed 60000 ms.
RECV_WINDOW_MAX_MS: Final = 60_000

# -- exports --------------------------------------------------------------------------------------------------------
# docs/binance-facts.md §Export download ids and quotas, §Export download links: a create call costs 1000 weight on
# /fapi and 1500 on /papi (per limiter group), each link poll 10.
EXPORT_CREATE_WEIGHT: Final[dict[str, int]] = {"futures": 1000, "papi": 1500}
EXPORT_LINK_WEIGHT: Final = 10
# docs/binance-facts.md §Export download ids and quotas: download ids per calendar month (UTC assumed, UNCONFIRMED), per
# endpoint, shared with the website's download page: orders 10, trades 5, income 5.
EXPORT_MONTHLY_QUOTA: Final[dict[str, int]] = {"order": 10, "trade": 5, "income": 5}
# docs/binance-facts.md §Export download links: 24 h on the endpoint pages, 7 days in newer SDK docstrings. Plan for the
# shorter; the answer's expirationTimestamp decides.
EXPORT_LINK_LIFETIME_MS: Final = DAY_MS

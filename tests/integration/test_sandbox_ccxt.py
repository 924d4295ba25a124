"""UNMODIFIED ccxt talks to the sandbox: signed allOrders works, a bad secret is an authentication error."""

from __future__ import annotations

import ccxt
import pytest

from pipeline.sandbox.testing import start_sandbox


def _exchange(sx, secret: str):
    ex = ccxt.binance(
        {
            "apiKey": sx.cfg.api_key,
            "secret": secret,
            "enableRateLimit": False,
            # only spot markets (GET /api/v3/exchangeInfo); no sapi calls for currencies or margin pairs
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False},
        }
    )
    for key in ("public", "private"):
        ex.urls["api"][key] = sx.url + "/api/v3"
    ex.urls["api"]["v1"] = sx.url + "/api/v1"
    return ex


def test_ccxt_fetch_orders_and_auth_error():
    with start_sandbox(
        listed_symbols=30, active_symbols=3, history_days=10, busy_day_orders=20, futures_history_days=10
    ) as sx:
        truth = sx.truth()
        sym = truth["active"][0]
        want = [o for o in truth["spot_orders"] if o["symbol"] == sym and not o["archived"]]
        ex = _exchange(sx, sx.cfg.api_secret)
        markets = ex.load_markets()
        unified = next(m["symbol"] for m in markets.values() if m["id"] == sym)
        orders = ex.fetch_orders(unified, limit=50)
        assert len(orders) == 50
        # compare the raw orderId (ccxt's own "id" prefers strategyId when an order carries one)
        assert [o["info"]["orderId"] for o in orders] == [o["orderId"] for o in want[-50:]]
        assert all(o["amount"] is not None and o["status"] for o in orders)
        assert {o["info"]["status"] for o in orders} <= {o["status"] for o in want}
        assert sx.stats()["errors_by_code"] == {}  # ccxt's signed request passed every check
        # ccxt maps Binance's own error bodies to its exception classes: the rejection must come from the
        # sandbox's signature (-1022) and key (-2015) checks, not from some other failure
        with pytest.raises(ccxt.AuthenticationError, match="-1022"):
            _exchange(sx, "wrong-secret").fetch_orders(unified, limit=5)
        bad_key = _exchange(sx, sx.cfg.api_secret)
        bad_key.apiKey = "someone-else"
        with pytest.raises(ccxt.AuthenticationError, match="-2015"):
            bad_key.fetch_orders(unified, limit=5)
        stats = sx.stats()
        assert stats["errors_by_code"] == {"-1022": 1, "-2015": 1}
        assert "/sapi" not in str(stats["by_endpoint"])

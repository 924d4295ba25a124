"""Spot symbol discovery: evidence, probe cost printed before probing, caching, blind spots."""

from __future__ import annotations

import json

import pytest

from pipeline.spot.discovery import SymbolIndex, discover_symbols
from pipeline.spot.fake import FakeSpotApi, make_order, scenario

NOW = 1_709_294_400_000  # 2024-03-01 12:00 UTC
DAY = 86_400_000


def small_fake(**kw) -> FakeSpotApi:
    fake = FakeSpotApi(now=NOW, **kw)
    fake.listed = {
        "BTCUSDT": ("BTC", "USDT"),
        "ETHBTC": ("ETH", "BTC"),
        "XRPUSDT": ("XRP", "USDT"),
        "DOGEUSDT": ("DOGE", "USDT"),
    }
    fake.add_orders([make_order("BTCUSDT", 5, NOW - 10 * DAY), make_order("BTCUSDT", 9, NOW - 2 * DAY)])
    fake.add_orders([make_order("XRPUSDT", 3, NOW - 5 * DAY, status="NEW", executed="0.00000000")])
    return fake


def test_full_probe_prints_cost_before_probing_and_caches(tmp_path):
    fake = small_fake()
    lines: list[tuple[str, int]] = []
    index = SymbolIndex.load(tmp_path, "main")
    res = discover_symbols(fake, index, log=lambda m: lines.append((m, fake.call_count("all_orders"))))
    cost_line, calls_then = lines[0]
    assert "full probe of 4 symbols" in cost_line and "weight" in cost_line and "min at 6000" in cost_line
    assert calls_then == 0  # printed before the first probe call
    assert res.full_probe and res.probed == 4
    assert res.symbols == ["BTCUSDT", "XRPUSDT"]
    assert res.cost_weight == fake.weight == 1 + 20 + 20 + 4 * 20 + 20  # time, info, account, probes, lists
    btc = index.symbols["BTCUSDT"]
    assert (btc.first_order_id, btc.last_order_id, btc.order_count, btc.count_exact) == (5, 9, 2, True)
    assert btc.has_open is False and index.symbols["XRPUSDT"].has_open is True
    assert index.symbols["ETHBTC"].order_count == 0 and "probe" in index.symbols["ETHBTC"].evidence

    # cached: a second "auto" discovery reloads the file and probes nothing
    before = fake.call_count("all_orders")
    again = SymbolIndex.load(tmp_path, "main")
    assert again.symbols["BTCUSDT"] == btc
    res2 = discover_symbols(fake, again, log=lambda m: None)
    assert fake.call_count("all_orders") == before and res2.probed == 0 and not res2.full_probe
    doc = json.loads((tmp_path / "state" / "spot_symbols.json").read_text())
    assert doc["accounts"]["main"]["full_probe_completed_at"] == NOW


def test_evidence_balances_lake_explicit_targeted(tmp_path):
    fake = small_fake()
    fake.balances = {"ETH": "0.50000000", "USDT": "10.00000000", "DOGE": "0.00000000"}
    fake.add_orders([make_order("OLDUSDT", 1, NOW - 30 * DAY)])  # delisted, still queryable
    fake.bad_symbols.add("GONEBUSD")
    index = SymbolIndex.load(tmp_path, "main")
    res = discover_symbols(
        fake, index, explicit=["oldusdt", "GONEBUSD"], lake_symbols=["BTCUSDT"], probe="targeted", log=lambda m: None
    )
    assert "balance" in index.symbols["ETHBTC"].evidence  # ETH held, BTC a common quote
    assert "DOGEUSDT" not in index.symbols  # zero balance is no evidence
    assert "XRPUSDT" not in index.symbols  # USDT alone is not evidence for every *USDT pair
    assert index.symbols["BTCUSDT"].evidence[:1] == ["lake"]
    assert index.symbols["OLDUSDT"].status == "delisted" and index.symbols["OLDUSDT"].order_count == 1
    assert index.symbols["GONEBUSD"].blind_spot and index.symbols["GONEBUSD"].status in ("delisted", "unknown")
    assert [(b.kind, b.symbol) for b in res.blind_spots if b.kind == "delisted"] == [("delisted", "GONEBUSD")]
    assert any(b.kind == "unprobed" for b in res.blind_spots)  # 2 listed symbols never looked at
    assert res.probed == 4 and not res.full_probe  # ETHBTC, BTCUSDT, OLDUSDT, GONEBUSD
    assert "GONEBUSD" not in res.symbols and "OLDUSDT" in res.symbols and "ETHBTC" in res.symbols


def test_probe_false_makes_no_order_calls(tmp_path):
    fake = small_fake()
    res = discover_symbols(
        fake, SymbolIndex.load(tmp_path, "main"), explicit=["BTCUSDT"], probe=False, log=lambda m: None
    )
    assert fake.call_count("all_orders") == 0 and fake.call_count("all_order_lists") == 0
    assert res.symbols == ["BTCUSDT"] and res.cost_weight == 41


def test_full_page_probe_fetches_newest_order_and_keeps_lower_bound(tmp_path):
    fake = small_fake()
    fake.add_orders(make_order("DOGEUSDT", i, NOW - 20 * DAY + i * 1000) for i in range(1, 1201))
    index = SymbolIndex.load(tmp_path, "main")
    discover_symbols(fake, index, log=lambda m: None)
    doge = index.symbols["DOGEUSDT"]
    assert (doge.order_count, doge.count_exact) == (1000, False)
    assert doge.last_order_id == 1200  # from the extra allOrders(limit=1)
    newest = [p for k, p in fake.calls if k == "all_orders" and p["symbol"] == "DOGEUSDT"]
    assert newest[-1]["limit"] == 1 and newest[-1]["order_id"] is None


def test_order_id_zero_rejected_falls_back_to_one(tmp_path, monkeypatch):
    from pipeline.spot import discovery

    monkeypatch.setitem(discovery._start_id, "value", 0)
    fake = small_fake(reject_order_id_zero=True)
    index = SymbolIndex.load(tmp_path, "main")
    discover_symbols(fake, index, log=lambda m: None)
    assert discovery.start_id() == 1
    assert index.symbols["BTCUSDT"].order_count == 2


def test_interrupted_full_probe_resumes(tmp_path):
    fake = small_fake()
    real = fake.all_orders
    state = {"n": 0}

    def flaky(symbol, **kw):
        state["n"] += 1
        if state["n"] == 3:
            raise ConnectionError("network down")
        return real(symbol, **kw)

    fake.all_orders = flaky  # type: ignore[method-assign]
    index = SymbolIndex.load(tmp_path, "main")
    with pytest.raises(ConnectionError):
        discover_symbols(fake, index, log=lambda m: None)
    fake.all_orders = real  # type: ignore[method-assign]
    index = SymbolIndex.load(tmp_path, "main")
    res = discover_symbols(fake, index, log=lambda m: None)
    assert res.full_probe and res.probed == 2  # only the two not probed before the crash
    assert index.full_probe_completed_at == NOW


def test_scenario_discovery_cost_is_one_call_per_symbol(tmp_path):
    fake = scenario()
    res = discover_symbols(
        fake, SymbolIndex.load(tmp_path, "main"), explicit=["DELISTUSDT", "GONEBUSD"], log=lambda m: None
    )
    busy = 1  # one symbol has a full first page -> one extra limit=1 call
    assert res.calls["all_orders"] == 302 + busy
    assert len(res.symbols) == 13 and "DELISTUSDT" in res.symbols

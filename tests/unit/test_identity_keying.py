"""The state that decides what to fetch is keyed by the account's identity: another uid on the same data dir and
account name (identity.json deleted, the check bypassed) sees none of it as done; state from before the keying
belongs to the identity identity.json records."""

import shutil
from datetime import date
from pathlib import Path

from pipeline import identity
from pipeline.exports.ledger import ExportLedger
from pipeline.futures import state
from pipeline.identity import Identity
from pipeline.spot.index import SymbolIndex
from pipeline.times import day_end_ms, day_start_ms
from pipeline.warehouse.status import symbols_section
from tests.support.exports import USDM, Clock, FakeClient, make_chain

SANDBOX = identity.hosts_of("http://127.0.0.1:4001", "http://127.0.0.1:4001", "http://127.0.0.1:4001")
BINANCE = identity.hosts_of("https://api.binance.com", "https://fapi.binance.com", "https://papi.binance.com")
DEMO = Identity(354937868, SANDBOX, "k-demo")
REAL = Identity(987654321, SANDBOX, "k-real")
JAN = (date(2025, 1, 1), date(2025, 1, 31))


def _reserve(ledger: ExportLedger, now_ms: int = 0):
    return ledger.reserve_attempt(
        market="usdm",
        kind="order",
        api="futures",
        account="main",
        start_ms=day_start_ms(JAN[0]),
        end_ms=day_end_ms(JAN[1]),
        now_ms=now_ms,
        limit=1,
        spacing_ms=0,
        failure_cooldown_ms=0,
    )


def _become(data: Path, who: Identity) -> None:
    """identity.json and the lake deleted (or never written), then ``who`` recorded by its first run."""
    identity.identity_path(data).unlink(missing_ok=True)
    shutil.rmtree(data / "lake", ignore_errors=True)
    identity.verify(data, "main", who)


def test_the_scope_survives_a_rotated_key_and_another_host_of_the_same_exchange() -> None:
    real = Identity(7, BINANCE, "k1")
    assert real.scope == Identity(7, identity.hosts_of("https://api1.binance.com"), "k2").scope == "uid7@binance.com"
    assert real.scope != Identity(7, SANDBOX, "k1").scope != Identity(8, SANDBOX, "k1").scope
    assert Identity(None, BINANCE, "k1").scope != Identity(None, BINANCE, "k2").scope


def test_an_account_keeps_its_scope_when_its_uid_is_learnt_later(tmp_path: Path) -> None:
    identity.verify(tmp_path, "main", Identity(None, BINANCE, "k1"))
    first = identity.owner(tmp_path, "main")
    identity.verify(tmp_path, "main", Identity(7, BINANCE, "k1"))  # recorded anew with its uid
    assert identity.recorded(tmp_path, "main").uid == 7 and identity.owner(tmp_path, "main") == first


def test_another_uid_sees_no_ledger_entry_as_done_and_spends_its_own_quota(tmp_path: Path) -> None:
    _become(tmp_path, DEMO)
    ledger = ExportLedger(tmp_path)
    demo = _reserve(ledger).entry
    assert demo is not None and demo.identity == DEMO.scope
    ledger.record_quota_block("usdm", "order", "main", 0, "quota exhausted (demo)")

    _become(tmp_path, REAL)
    assert ledger.entries(account="main") == [] and ledger.quota("usdm", "order", "main", "1970-01", 1).used == 0
    real = _reserve(ledger).entry  # not covered, within a quota of 1, not blocked: the demo's are not this account's
    assert real is not None and (real.start_ms, real.end_ms) == (demo.start_ms, demo.end_ms)
    assert [e.id for e in ledger.entries(account="main")] == [real.id]
    assert len(ledger.entries()) == 2  # nothing deleted: `orderlake exports list` still shows both

    identity.record(tmp_path, "main", DEMO)
    assert [e.id for e in ledger.entries(account="main")] == [demo.id]


def test_the_chain_requests_every_range_another_uid_already_exported(tmp_path: Path) -> None:
    clock = Clock()
    _become(tmp_path, DEMO)
    exchange = FakeClient()  # download ids are unique across the exchange's accounts
    assert len(make_chain(tmp_path, exchange, clock).request(USDM, *JAN)) == 1
    _become(tmp_path, REAL)
    clock.t += 3600
    again = make_chain(tmp_path, exchange, clock).request(USDM, *JAN)
    assert len(again) == 1 and len(exchange.creates) == 2 and again.plan.covering == ()


def test_rows_from_before_the_keying_belong_to_the_recorded_identity(tmp_path: Path) -> None:
    ledger = ExportLedger(tmp_path)
    old = _reserve(ledger).entry  # no identity recorded yet: a row as every ledger before version 4 holds
    assert old is not None and old.identity is None
    identity.verify(tmp_path, "main", DEMO)
    assert ExportLedger(tmp_path).get(old.id).identity == DEMO.scope  # stamped when the ledger is opened
    _become(tmp_path, REAL)
    assert ExportLedger(tmp_path).entries(account="main") == []


def test_another_uid_finds_the_symbol_index_empty_and_replaces_it(tmp_path: Path) -> None:
    legacy = SymbolIndex.load(tmp_path, "main")
    legacy.get("DEMOUSDT").add_evidence("balance")
    legacy.save()  # no identity recorded: an index as written before the keying
    identity.verify(tmp_path, "main", DEMO)
    demo = SymbolIndex.load(tmp_path, "main")
    assert list(demo.symbols) == ["DEMOUSDT"]  # the recorded identity's
    demo.get("BTCUSDT").add_evidence("probe")
    demo.save()

    _become(tmp_path, REAL)
    real = SymbolIndex.load(tmp_path, "main")
    assert real.symbols == {}
    real.get("ETHUSDT").add_evidence("balance")
    real.save()
    assert list(SymbolIndex.load(tmp_path, "main").symbols) == ["ETHUSDT"]  # no demo symbol merged in
    identity.record(tmp_path, "main", DEMO)
    assert SymbolIndex.load(tmp_path, "main").symbols == {}  # the demo's facts are gone, not mixed


def test_status_never_shows_another_uids_symbols_as_this_accounts(tmp_path: Path) -> None:
    identity.verify(tmp_path, "main", DEMO)
    demo = SymbolIndex.load(tmp_path, "main")
    demo.get("DEMOUSDT").add_evidence("balance")
    demo.save()
    assert symbols_section(tmp_path, "main").known == 1

    _become(tmp_path, REAL)  # identity.json deleted, then the real account recorded; its first backfill not yet run
    shown = symbols_section(tmp_path, "main")
    assert shown.known == 0 and shown.with_orders == [] and shown.blind_spots == []
    assert DEMO.scope in shown.problem and "replaces it" in shown.problem


def test_another_uid_finds_no_futures_day_complete(tmp_path: Path) -> None:
    _become(tmp_path, DEMO)
    state.update(tmp_path, "main", "usdm", lambda s: state.add_days(s, {JAN[0]}))
    assert state.complete_days(state.load(tmp_path, "main", "usdm")) == {JAN[0]}
    _become(tmp_path, REAL)
    assert state.load(tmp_path, "main", "usdm") == {}
    state.update(tmp_path, "main", "usdm", lambda s: state.add_days(s, {JAN[1]}))
    assert state.complete_days(state.load(tmp_path, "main", "usdm")) == {JAN[1]}

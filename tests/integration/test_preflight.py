"""Credentials checked up front: a wrong secret, a wrong key, a missing key and a key without futures permission
each stop `orderlake backfill` before any order request, with a last line naming the cause and the fix, and
`orderlake check` reports each case on one screen with a non-zero exit."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from assets.cli import main
from pipeline.exports.ledger import ledger_path
from pipeline.sandbox.testing import start_sandbox
from pipeline.settings import Secret, Settings
from tests.support.assets import sandbox_settings
from tests.support.quick import within

SHAPE = {"history_days": 5, "futures_history_days": 5, "listed_symbols": 20, "active_symbols": 3, "time_scale": 60.0}
# the only requests a refused backfill may send: time, limits, the account and the key's permissions
CHEAP = {"/api/v3/time", "/api/v3/exchangeInfo", "/api/v3/account", "/sapi/v1/account/apiRestrictions"}
CHEAP |= {"/fapi/v1/time", "/fapi/v1/exchangeInfo", "/fapi/v3/account", "/papi/v1/um/account"}


@pytest.fixture(scope="module")
def sandbox():
    with start_sandbox(**SHAPE) as sx:
        yield sx


@pytest.fixture(scope="module")
def no_futures():
    """A key without 'Enable Futures' that can trade and withdraw: what a backup must not use."""
    with start_sandbox(**SHAPE, key_futures=False, key_trading=True, key_withdrawals=True) as sx:
        yield sx


def _range() -> list[str]:
    end = datetime.now(UTC).date() - timedelta(days=1)
    return ["--start", (end - timedelta(days=2)).isoformat(), "--end", end.isoformat()]


CASES = {
    "wrong secret": ({"api_secret": Secret("not-the-secret")}, ("-1022", "BINANCE_API_SECRET")),
    "wrong key": ({"api_key": Secret("not-the-key")}, ("-2015", "BINANCE_API_KEY")),
    "missing key": ({"api_key": None, "api_secret": None}, ("needs an API key", "set BINANCE_API_KEY")),
}


def _refused(sx, settings: Settings, capsys, monkeypatch) -> str:
    before = dict(sx.stats()["by_endpoint"])
    with within(monkeypatch):  # "stops in under 5 s", on any machine
        assert main(["backfill", *_range(), "--quiet"], settings) == 1
    out, err = capsys.readouterr()
    assert out == ""
    after = sx.stats()["by_endpoint"]
    sent = {path for path, n in after.items() if n != before.get(path, 0)}
    assert sent <= CHEAP, f"a refused backfill sent {sent - CHEAP}"
    assert not ledger_path(settings.data_dir).exists()  # no export attempt, no quota touched
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_credentials_fail_fast_naming_the_cause(sandbox, tmp_path: Path, monkeypatch, capsys, case) -> None:
    changes, words = CASES[case]
    settings = sandbox_settings(monkeypatch, sandbox, tmp_path / "data").replace(**changes)
    last = _refused(sandbox, settings, capsys, monkeypatch)
    assert last.startswith("orderlake backfill: spot REST: ")
    assert all(w in last for w in words), last
    assert "max_retries" not in last

    assert main(["check"], settings) == 1
    report = capsys.readouterr().out.splitlines()
    fails = [line for line in report if line.startswith("FAIL")]
    assert len(fails) == 1 and "spot REST" in fails[0] and all(w in fails[0] for w in words)
    assert report[-1].startswith("1 failure(s)") and words[0] in report[-1]


def test_key_without_futures_permission(no_futures, tmp_path: Path, monkeypatch, capsys) -> None:
    settings = sandbox_settings(monkeypatch, no_futures, tmp_path / "data")
    last = _refused(no_futures, settings, capsys, monkeypatch)
    assert last.startswith("orderlake backfill: USDⓈ-M: the API key has no futures permission")
    assert "Enable Futures" in last and "--select spot" in last

    assert main(["check"], settings) == 1
    report = capsys.readouterr().out
    assert "FAIL  USDⓈ-M" in report and "FAIL  PM" in report
    assert "can trade spot and margin, WITHDRAW" in report  # a backup needs a read-only key
    assert "not IP-restricted; a key that can trade or move funds must be" in report
    assert f"account uid {no_futures.cfg.uid}" in report
    # spot alone needs no futures permission: the same key may back up spot
    assert main(["check", "--surface", "spot REST"], settings) == 0


def test_check_passes_on_a_read_only_key(sandbox, tmp_path: Path, monkeypatch, capsys) -> None:
    settings = sandbox_settings(monkeypatch, sandbox, tmp_path / "data")
    assert main(["check"], settings) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not [line for line in lines if line.startswith(("FAIL", "WARN"))], lines
    surfaces = {line[6:18].strip() for line in lines if line.startswith("ok")}
    assert {"spot REST", "spot WS API", "USDⓈ-M", "PM", "key", "quota"} <= surfaces
    assert any("usdm/order exports" in line and "10 of 10" in line for line in lines)
    assert lines[-1] == "every check passed, 0 warning(s)"


def test_ip_whitelist_refusal_names_the_whitelist(tmp_path: Path, monkeypatch, capsys) -> None:
    with start_sandbox(**SHAPE, key_allowed_ips=("203.0.113.7",)) as sx:
        settings = sandbox_settings(monkeypatch, sx, tmp_path / "data")
        assert main(["check"], settings) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "-2015" in last and "IP whitelist" in last

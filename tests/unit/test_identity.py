"""Account identity: recorded on first use, compared after, refused on a different account with both named."""

import json
from pathlib import Path

import pytest

from pipeline import identity
from pipeline.identity import Identity, IdentityMismatch
from pipeline.settings import Settings
from pipeline.storage import lakefs

SANDBOX = identity.hosts_of("http://127.0.0.1:4001", "http://127.0.0.1:4001", "http://127.0.0.1:4001")
BINANCE = identity.hosts_of("https://api.binance.com", "https://fapi.binance.com", "https://papi.binance.com")


def test_first_use_records_and_the_secret_is_never_stored(tmp_path: Path) -> None:
    me = Identity(111, BINANCE, identity.fingerprint("my-api-key"))
    identity.verify(tmp_path, "main", me)
    assert identity.recorded(tmp_path, "main") == me
    text = identity.identity_path(tmp_path).read_text()
    assert "my-api-key" not in text and json.loads(text)["accounts"]["main"]["uid"] == 111
    identity.verify(tmp_path, "main", me)  # the same account again: fine


def test_another_uid_is_refused_naming_both(tmp_path: Path) -> None:
    identity.verify(tmp_path, "main", Identity(354937868, SANDBOX, identity.fingerprint("sandbox-api-key")))
    real = Identity(222, BINANCE, identity.fingerprint("real-key"))
    with pytest.raises(IdentityMismatch) as refused:
        identity.verify(tmp_path, "main", real)
    text = str(refused.value)
    assert "uid 354937868" in text and "uid 222" in text and "127.0.0.1:4001" in text and "api.binance.com" in text
    assert "ORDERLAKE_ACCOUNT=uid222" in text and "ORDERLAKE_DATA_DIR" in text
    identity.verify(tmp_path, "uid222", real)  # another account name in the same data dir is another account
    assert identity.recorded(tmp_path, "main").uid == 354937868


def test_the_same_uid_on_a_sandbox_is_not_the_real_account(tmp_path: Path) -> None:
    identity.verify(tmp_path, "main", Identity(5, BINANCE, "k1"))
    with pytest.raises(IdentityMismatch):
        identity.verify(tmp_path, "main", Identity(5, SANDBOX, "k1"))


def test_a_rotated_key_of_the_same_account_is_recorded_anew(tmp_path: Path) -> None:
    identity.verify(tmp_path, "main", Identity(7, BINANCE, "old"))
    identity.verify(tmp_path, "main", Identity(7, BINANCE, "new"))
    assert identity.recorded(tmp_path, "main").key == "new"


def test_without_uid_the_key_and_hosts_decide(tmp_path: Path) -> None:
    identity.verify(tmp_path, "main", Identity(None, BINANCE, "k1"))
    identity.verify(tmp_path, "main", Identity(None, BINANCE, "k1"))
    with pytest.raises(IdentityMismatch):
        identity.verify(tmp_path, "main", Identity(None, BINANCE, "k2"))


def test_a_demo_dir_from_before_identities_refuses_a_real_exchange(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / identity.DEMO_MARK).write_text("{}")
    with pytest.raises(IdentityMismatch, match="sandbox demo"):
        identity.verify(tmp_path, "main", Identity(9, BINANCE, "k"))
    assert identity.recorded(tmp_path, "main") is None


def test_guard_asks_for_the_uid_only_when_the_key_or_hosts_changed(tmp_path: Path) -> None:
    asked: list[int] = []

    def uid() -> int:
        asked.append(1)
        return 42

    identity.guard(tmp_path, "main", BINANCE, "k1", uid)
    identity.guard(tmp_path, "main", BINANCE, "k1", uid)
    assert len(asked) == 1
    identity.guard(tmp_path, "main", BINANCE, "k2", uid)  # rotated key, same uid: recorded, asked once more
    assert len(asked) == 2 and identity.recorded(tmp_path, "main").key == "k2"
    with pytest.raises(IdentityMismatch):
        identity.guard(tmp_path, "main", BINANCE, "k3", lambda: 43)


def test_the_lake_keeps_its_own_record_when_identity_json_is_deleted(tmp_path: Path) -> None:
    demo = Identity(354937868, SANDBOX, identity.fingerprint("sandbox-api-key"))
    identity.verify(tmp_path, "main", demo)
    assert identity.lake_recorded(tmp_path, "main") == demo
    identity.identity_path(tmp_path).unlink()  # the data dir's record lost, the lake kept
    real = Identity(222, BINANCE, identity.fingerprint("real-key"))
    with pytest.raises(IdentityMismatch) as refused:
        identity.verify(tmp_path, "main", real)
    text = str(refused.value)
    assert "the lake" in text and "uid 354937868" in text and "uid 222" in text and "ORDERLAKE_ACCOUNT=uid222" in text
    assert identity.recorded(tmp_path, "main") is None  # nothing recorded for the refused key
    identity.verify(tmp_path, "main", demo)  # the lake's own account is welcome back, and recorded again
    assert identity.recorded(tmp_path, "main") == demo


def test_two_data_dirs_on_one_lake_cannot_write_two_accounts_under_one_name(tmp_path: Path) -> None:
    first, second = tmp_path / "host-a", tmp_path / "host-b"
    lakefs.bind(second, lakefs.location(first))  # both write the same lake (an S3 prefix, in production)
    try:
        identity.verify(first, "desk", Identity(7, BINANCE, "k1"))
        with pytest.raises(IdentityMismatch, match="ORDERLAKE_LAKE_URL"):
            identity.verify(second, "desk", Identity(8, BINANCE, "k2"))
        identity.verify(second, "desk", Identity(7, BINANCE, "k3"))  # the same account, another key: fine
        assert identity.lake_recorded(first, "desk") == Identity(7, BINANCE, "k3")
    finally:
        lakefs.configure(Settings.from_env({"ORDERLAKE_DATA_DIR": str(second)}))


def test_guard_asks_binance_when_the_lake_records_another_account(tmp_path: Path) -> None:
    identity.verify(tmp_path, "main", Identity(7, BINANCE, "k1"))
    identity.record_in_lake(tmp_path, "main", Identity(8, BINANCE, "k9"), "uid8@binance.com")  # another data dir
    asked = []
    with pytest.raises(IdentityMismatch, match="the lake"):
        identity.guard(tmp_path, "main", BINANCE, "k1", lambda: asked.append(1) or 7)
    assert asked == [1]
    asked.clear()
    identity.guard(tmp_path / "other", "main", BINANCE, "k1", lambda: asked.append(1) or 7)
    identity.guard(tmp_path / "other", "main", BINANCE, "k1", lambda: asked.append(1) or 7)
    assert asked == [1]  # recorded in both places by the first call: the second costs no request

"""The accounts file: many accounts in one deployment, strictly checked, keys only by reference; without a file the
single-account environment is a fleet of one."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pipeline.accounts import MARKETS, KeySource, fleet_of, load_accounts
from pipeline.errors import ConfigurationError
from pipeline.settings import PRODUCTION_URLS, Secret, Settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "accounts.example.toml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"ORDERLAKE_ACCOUNTS_FILE": str(path), **(env or {})})
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_without_a_file_the_environment_is_a_fleet_of_one() -> None:
    env = {"BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s", "ORDERLAKE_ACCOUNT": "solo"}
    env |= {"ORDERLAKE_START_DATE": "2022-03-04", "BINANCE_SPOT_URL": "http://127.0.0.1:9"}
    settings = Settings.from_env(env)
    fleet = fleet_of(settings)
    assert fleet.names == ("solo",) and fleet.path is None
    (one,) = fleet.accounts
    assert one.markets == MARKETS and one.start_date == date(2022, 3, 4)
    assert one.api_key == KeySource(env="BINANCE_API_KEY") and one.env_names() == (
        "BINANCE_API_KEY",
        "BINANCE_API_SECRET",
    )
    assert one.hosts["spot_url"] == "http://127.0.0.1:9" and one.hosts["papi_url"] == PRODUCTION_URLS["papi"]
    assert one.settings(settings, env) == settings  # the same account, whichever way it is described


def test_the_documented_example_loads(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("desk-b-key\n")
    (tmp_path / "ed.pem").write_text("not checked here")
    text = (
        EXAMPLE.read_text()
        .replace("/run/secrets/desk-b/api-key", "key")
        .replace("/run/secrets/desk-b/ed25519.pem", "ed.pem")
    )
    path = _write(tmp_path, text)
    env = {n: f"value-of-{n}" for n in ("DESK_A_API_KEY", "DESK_A_API_SECRET", "DESK_B_KEY_PASSWORD")}
    env |= {"SANDBOX_1_API_KEY": "sk", "SANDBOX_1_API_SECRET": "ss", "ORDERLAKE_ACCOUNTS_FILE": str(path)}
    settings = Settings.from_env(env)
    fleet = fleet_of(settings, env)
    assert fleet.names == ("desk-a", "desk-b", "sandbox-1")
    a, b, s = fleet.accounts
    assert a.markets == MARKETS and a.start_date == date(2024, 1, 1) and a.spot_symbols == ("LUNAUSDT",)
    assert b.markets == ("spot", "usdm") and b.start_date == date(2023, 6, 1) and fleet.first_day == date(2023, 6, 1)
    assert b.api_key == KeySource(file=tmp_path / "key") and b.private_key_file == tmp_path / "ed.pem"
    assert b.api_key.read(env) == Secret("desk-b-key")  # a key file holds the value alone; the newline is not the key
    assert a.hosts["spot_url"] == PRODUCTION_URLS["spot"] and s.hosts["futures_url"] == "http://127.0.0.1:8765"
    per_account = s.settings(settings, env)
    assert per_account.account == "sandbox-1" and per_account.api_secret == Secret("ss")
    assert per_account.papi_url == "http://127.0.0.1:8765" and per_account.accounts_file == path
    assert fleet["desk-b"] is b
    with pytest.raises(ConfigurationError, match="no account 'desk-c'"):
        fleet["desk-c"]


def test_the_example_names_variables_that_must_be_set() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"ORDERLAKE_ACCOUNTS_FILE": str(EXAMPLE)})
    assert "[accounts.desk-a]: api_key_env names $DESK_A_API_KEY, which is not set" in str(info.value)


HMAC = 'api_key_env = "K"\napi_secret_env = "S"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[accounts]\n", "no account"),
        ("x = 1\n[accounts.a]\n", "unknown table(s) ['x']"),
        ("[accounts.a]\napi_key = 'the-key'\n", "unknown key(s) ['api_key']"),
        ("[accounts.'a b']\n", "a name is 1-63 letters"),
        ("[accounts.a]\nmarkets = ['spot', 'coinm']\n", "markets=['spot', 'coinm']"),
        ("[accounts.a]\nmarkets = []\n", "a non-empty list"),
        ("[accounts.a]\nstart_date = '2024-13-01'\n", "start_date='2024-13-01' is not a date"),
        ("[accounts.a]\nstart_date = 2024-01-01T00:00:00\n", "is not a date"),
        ("[accounts.a]\napi_key_env = 'K'\napi_key_file = 'k'\n", "api_key_env and api_key_file are both set"),
        ("[accounts.a]\napi_key_env = 'abc-def/123+xyz'\n", "must be the NAME of an environment variable"),
        ("[accounts.a]\napi_secret_env = 'S'\n", "without api_key_env / api_key_file"),
        ("[accounts.a]\n" + HMAC + "private_key_file = 'k.pem'\n", "a Binance key has one type"),
        ("[accounts.a]\napi_key_env = 'K'\nprivate_key_password_env = 'P'\n", "without private_key_file"),
        ("[accounts.a]\n[accounts.a.hosts]\nspot_url = 'ftp://x'\n", "hosts.spot_url='ftp://x'"),
        ("[accounts.a]\n[accounts.a.hosts]\nspot = 'http://x'\n", "hosts must be a table of"),
        ("[accounts.a]\nspot_symbols = ['btcusdt']\n", "upper-case symbols"),
        ("[defaults]\napi_key_env = 'K'\n[accounts.a]\n", "per-account key(s) ['api_key_env']"),
        ("[accounts.Desk]\n[accounts.desk]\n", "differs from [accounts.Desk] only in case"),
        ("[accounts.a]\napi_key_file = 'missing'\n", "api_key_file"),
        ("[accounts.a\n", "not valid TOML"),
        ("[accounts.a]\n" + HMAC, "api_key_env names $K, which is not set"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_place(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _error(tmp_path, text)


def test_a_missing_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"ORDERLAKE_ACCOUNTS_FILE=.*cannot read it"):
        Settings.from_env({"ORDERLAKE_ACCOUNTS_FILE": str(tmp_path / "nope.toml")})


def test_errors_never_echo_a_secret(tmp_path: Path) -> None:
    message = _error(tmp_path, "[accounts.a]\napi_secret = 'hunter2-very-secret'\napi_key_env = 'K'\n", {"K": "v"})
    assert "hunter2" not in message


def test_defaults_apply_and_accounts_override(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "[defaults]\nmarkets = ['usdm', 'spot']\nstart_date = '2023-01-02'\n[defaults.hosts]\n"
        "spot_url = 'http://127.0.0.1:1/'\n[accounts.a]\n[accounts.b]\nmarkets = ['pm']\n"
        "[accounts.b.hosts]\npapi_url = 'http://127.0.0.1:2'\n",
    )
    fleet = load_accounts(path, Settings())
    a, b = fleet.accounts
    assert a.markets == ("spot", "usdm") and b.markets == ("pm",) and a.start_date == b.start_date == date(2023, 1, 2)
    assert a.hosts["spot_url"] == b.hosts["spot_url"] == "http://127.0.0.1:1" and b.hosts["papi_url"].endswith(":2")
    assert a.api_key is None and a.env_names() == ()


def test_a_key_file_that_cannot_be_read_names_the_file(tmp_path: Path) -> None:
    source = KeySource(file=tmp_path / "gone")
    with pytest.raises(ConfigurationError, match="cannot read the key file"):
        source.read({})

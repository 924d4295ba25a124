"""Settings: every documented variable, typed, parsed one way, with one clear line for a bad value; the README's
Configuration table is exactly what Settings reads; no other module reads the environment."""

from __future__ import annotations

import ast
import os
import pickle
import re
from datetime import date
from pathlib import Path

import pytest

from pipeline.errors import ConfigurationError
from pipeline.settings import (
    FALSE_WORDS,
    PRODUCTION_URLS,
    TRUE_WORDS,
    Secret,
    Settings,
    default_budget_dir,
    exported_secrets,
    variables,
)

ROOT = Path(__file__).resolve().parents[2]

# A value for every variable, none of them the default, and the typed value Settings must turn it into.
EVERY_VARIABLE = {
    "BINANCE_API_KEY": ("key-123", "api_key", Secret("key-123")),
    "BINANCE_API_SECRET": ("secret-456", "api_secret", Secret("secret-456")),
    "BINANCE_PRIVATE_KEY_FILE": ("keys/ed25519.pem", "private_key_file", Path("keys/ed25519.pem")),
    "BINANCE_PRIVATE_KEY_PASSWORD": ("pw-789", "private_key_password", Secret("pw-789")),
    "BINANCE_SPOT_URL": ("http://127.0.0.1:8765/", "spot_url", "http://127.0.0.1:8765"),
    "BINANCE_WS_API_URL": ("ws://127.0.0.1:8765/ws-api/v3", "ws_api_url", "ws://127.0.0.1:8765/ws-api/v3"),
    "BINANCE_FUTURES_URL": ("https://testnet.binancefuture.com", "futures_url", "https://testnet.binancefuture.com"),
    "BINANCE_PAPI_URL": ("http://localhost:9/", "papi_url", "http://localhost:9"),
    "BINANCE_SPOT_TRANSPORT": ("WS", "spot_transport", "ws"),
    "ORDERLAKE_DATA_DIR": ("/srv/lake", "data_dir", Path("/srv/lake")),
    "ORDERLAKE_ACCOUNT": ("sub-1@example.com", "account", "sub-1@example.com"),
    "ORDERLAKE_ACCOUNTS_FILE": (
        str(ROOT / "tests/support/accounts.toml"),
        "accounts_file",
        ROOT / "tests/support/accounts.toml",
    ),
    "ORDERLAKE_EXECUTOR": ("Celery", "executor", "celery"),
    "ORDERLAKE_CELERY_URL": ("redis://:pw@127.0.0.1:6379/0", "celery_url", Secret("redis://:pw@127.0.0.1:6379/0")),
    "ORDERLAKE_START_DATE": ("2021-01-01", "start_date", date(2021, 1, 1)),
    "ORDERLAKE_SPOT_SYMBOLS": ("lunausdt, FTTUSDT,,lunausdt ", "spot_symbols", ("FTTUSDT", "LUNAUSDT")),
    "ORDERLAKE_FUTURES_SYMBOLS": ("ftmusdt,BTCUSDT", "futures_symbols", ("BTCUSDT", "FTMUSDT")),
    "ORDERLAKE_MONTHLY_RECONCILIATION": ("yes", "monthly_reconciliation", True),
    "ORDERLAKE_SPOT_PROBE": ("Targeted", "spot_probe", "targeted"),
    "ORDERLAKE_EXPORT_MONTHLY_LIMIT": ("4", "export_monthly_limit", 4),
    "ORDERLAKE_EXPORT_TRADE_MONTHLY_LIMIT": ("3", "export_trade_monthly_limit", 3),
    "ORDERLAKE_EXPORT_INCOME_MONTHLY_LIMIT": ("2", "export_income_monthly_limit", 2),
    "ORDERLAKE_EXPORT_CRON": ("0  2 * * mon-fri", "export_cron", "0 2 * * mon-fri"),
    "ORDERLAKE_EXPORT_UTC_OFFSET_MINUTES": ("-300", "export_utc_offset_minutes", -300),
    "ORDERLAKE_EXPORT_MAX_DOWNLOAD_BYTES": ("1000000", "export_max_download_bytes", 1_000_000),
    "ORDERLAKE_EXPORT_MAX_DOWNLOAD_SECONDS": ("90.5", "export_max_download_seconds", 90.5),
    "ORDERLAKE_BUDGET_DIR": ("/var/tmp/budget", "budget_dir", Path("/var/tmp/budget")),
    "ORDERLAKE_BUDGET_URL": ("redis://:pw@10.0.0.5:6379/0", "budget_url", Secret("redis://:pw@10.0.0.5:6379/0")),
    "ORDERLAKE_EGRESS_IP": ("203.0.113.7", "egress_ip", "203.0.113.7"),
    "ORDERLAKE_LAKE_URL": ("s3://orders/prod/lake/", "lake_url", "s3://orders/prod/lake"),
    "AWS_ACCESS_KEY_ID": ("AKIA-1", "aws_access_key_id", Secret("AKIA-1")),
    "AWS_SECRET_ACCESS_KEY": ("aws-secret-2", "aws_secret_access_key", Secret("aws-secret-2")),
    "AWS_SESSION_TOKEN": ("aws-token-3", "aws_session_token", Secret("aws-token-3")),
    "AWS_REGION": ("eu-west-1", "aws_region", "eu-west-1"),
    "AWS_ENDPOINT_URL": ("http://127.0.0.1:9000/", "aws_endpoint_url", "http://127.0.0.1:9000"),
    "ORDERLAKE_SNAPSHOT_GRACE_SECONDS": ("120.5", "snapshot_grace_seconds", 120.5),
    "ORDERLAKE_ALLOW_HTTP_LOOPBACK": ("yes", "allow_http_loopback", True),
    "ORDERLAKE_TIME_SCALE": ("120", "time_scale", 120.0),
    "DAGSTER_HOME": ("/srv/dagster", "dagster_home", Path("/srv/dagster")),
}

DEFAULTS = {
    "api_key": None,
    "api_secret": None,
    "private_key_file": None,
    "private_key_password": None,
    "spot_url": PRODUCTION_URLS["spot"],
    "ws_api_url": PRODUCTION_URLS["ws_api"],
    "futures_url": PRODUCTION_URLS["futures"],
    "papi_url": PRODUCTION_URLS["papi"],
    "spot_transport": "rest",
    "data_dir": Path("data"),
    "account": "main",
    "accounts_file": None,
    "executor": "multiprocess",
    "celery_url": None,
    "start_date": date(2024, 1, 1),
    "spot_symbols": (),
    "futures_symbols": (),
    "monthly_reconciliation": False,
    "spot_probe": "auto",
    "export_monthly_limit": None,
    "export_trade_monthly_limit": None,
    "export_income_monthly_limit": None,
    "export_cron": "45 0 * * *",
    "export_utc_offset_minutes": None,
    "budget_dir": default_budget_dir(),
    "budget_url": None,
    "egress_ip": None,
    "lake_url": None,
    "aws_access_key_id": None,
    "aws_secret_access_key": None,
    "aws_session_token": None,
    "aws_region": None,
    "aws_endpoint_url": None,
    "snapshot_grace_seconds": 3600.0,
    "allow_http_loopback": False,
    "time_scale": 1.0,
    "dagster_home": None,
}


def test_every_variable_is_read_and_typed() -> None:
    assert set(EVERY_VARIABLE) == set(variables())  # a new variable needs a line here (and in the README)
    settings = Settings.from_env({name: text for name, (text, _, _) in EVERY_VARIABLE.items()})
    for name, (_, field, want) in EVERY_VARIABLE.items():
        assert getattr(settings, field) == want, name


def test_defaults_when_nothing_is_set_and_empty_counts_as_unset() -> None:
    assert {name: getattr(Settings.from_env({}), name) for name in DEFAULTS} == DEFAULTS
    blank = Settings.from_env({name: "  " for name in variables()})
    assert {name: getattr(blank, name) for name in DEFAULTS} == DEFAULTS


@pytest.mark.parametrize("word", [*TRUE_WORDS, "TRUE", " On ", "Yes"])
def test_boolean_true_words(word: str) -> None:
    assert Settings.from_env({"ORDERLAKE_ALLOW_HTTP_LOOPBACK": word}).allow_http_loopback is True


@pytest.mark.parametrize("word", [*FALSE_WORDS, "FALSE", " Off "])
def test_boolean_false_words(word: str) -> None:
    assert Settings.from_env({"ORDERLAKE_ALLOW_HTTP_LOOPBACK": word}).allow_http_loopback is False


@pytest.mark.parametrize("word", ["maybe", "2", "y", "t", "enabled", "-1"])
def test_anything_else_is_not_a_boolean(word: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        Settings.from_env({"ORDERLAKE_ALLOW_HTTP_LOOPBACK": word})
    assert f"ORDERLAKE_ALLOW_HTTP_LOOPBACK={word!r}" in str(err.value)
    assert "1/true/yes/on or 0/false/no/off" in str(err.value)


BAD_VALUES = [
    ("BINANCE_SPOT_TRANSPORT", "grpc", "rest or ws"),
    ("ORDERLAKE_SPOT_PROBE", "sometimes", "auto, full, targeted or off"),
    ("ORDERLAKE_START_DATE", "2024-13-01", "date YYYY-MM-DD"),
    ("ORDERLAKE_START_DATE", "1704067200", "date YYYY-MM-DD"),
    ("ORDERLAKE_EXPORT_MONTHLY_LIMIT", "ten", "integer 0–1000"),
    ("ORDERLAKE_EXPORT_MONTHLY_LIMIT", "-1", "integer 0–1000"),
    ("ORDERLAKE_EXPORT_UTC_OFFSET_MINUTES", "900", "integer −720–840"),
    ("ORDERLAKE_EXPORT_UTC_OFFSET_MINUTES", "+8h", "integer −720–840"),
    ("ORDERLAKE_SNAPSHOT_GRACE_SECONDS", "-5", "number ≥ 0"),
    ("ORDERLAKE_SNAPSHOT_GRACE_SECONDS", "1h", "number ≥ 0"),
    ("ORDERLAKE_TIME_SCALE", "0", "number > 0"),
    ("ORDERLAKE_TIME_SCALE", "fast", "number > 0"),
    ("ORDERLAKE_EXPORT_CRON", "30 0 * *", "cron expression"),
    ("ORDERLAKE_EXPORT_CRON", "61 0 * * 1", "cron expression"),
    ("ORDERLAKE_EXPORT_CRON", "30 0 * * funday", "cron expression"),
    ("ORDERLAKE_EXPORT_CRON", "*/0 * * * *", "cron expression"),
    ("BINANCE_SPOT_URL", "api.binance.com", "http(s) URL"),
    ("BINANCE_FUTURES_URL", "wss://fstream.binance.com", "http(s) URL"),
    ("BINANCE_PAPI_URL", "https://", "http(s) URL"),
    ("BINANCE_WS_API_URL", "https://ws-api.binance.com", "ws(s) URL"),
    ("ORDERLAKE_ACCOUNT", "a/b", "name without"),
    ("ORDERLAKE_ACCOUNT", "..", "name without"),
    ("ORDERLAKE_ACCOUNT", "x=y", "name without"),
]


@pytest.mark.parametrize(("variable", "value", "allowed"), BAD_VALUES)
def test_a_bad_value_is_one_line_naming_variable_value_and_what_is_allowed(
    variable: str, value: str, allowed: str
) -> None:
    with pytest.raises(ConfigurationError) as err:
        Settings.from_env({variable: value})
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("invalid configuration: ")
    assert f"{variable}={value!r} is invalid (" in text
    assert f"allowed: {allowed}" in text


def test_every_bad_variable_is_named_at_once() -> None:
    with pytest.raises(ConfigurationError) as err:
        Settings.from_env({"ORDERLAKE_TIME_SCALE": "0", "BINANCE_SPOT_TRANSPORT": "grpc", "ORDERLAKE_ACCOUNT": "ok"})
    text = str(err.value)
    assert "\n" not in text and "ORDERLAKE_TIME_SCALE='0'" in text and "BINANCE_SPOT_TRANSPORT='grpc'" in text


def test_valid_cron_forms() -> None:
    for cron in ("30 0 * * 1", "*/15 0-6 1,15 jan-mar sun", "0 0 * * 7", "5 4 * * SAT"):
        assert Settings.from_env({"ORDERLAKE_EXPORT_CRON": cron}).export_cron == cron


def test_secrets_never_print_nor_pickle() -> None:
    env = {"BINANCE_API_KEY": "KEY-visible-nowhere", "BINANCE_API_SECRET": "SECRET-visible-nowhere"}
    settings = Settings.from_env(env)
    for text in (repr(settings), str(settings), repr(settings.api_key), f"{settings.api_secret}"):
        assert "visible-nowhere" not in text
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(settings)
    assert settings.secret_environment() == env


def test_environment_round_trips_for_a_child_process() -> None:
    settings = Settings.from_env({name: text for name, (text, _, _) in EVERY_VARIABLE.items()})
    assert Settings.from_env(settings.environment()) == settings
    assert Settings.from_env(Settings().environment()) == Settings()


def test_replace_validates_like_from_env() -> None:
    settings = Settings().replace(spot_probe="targeted", start_date=date(2022, 2, 2))
    assert (settings.spot_probe, settings.start_date) == ("targeted", date(2022, 2, 2))
    with pytest.raises(ValueError, match="time_scale"):
        Settings().replace(time_scale=0)


def test_exported_secrets_are_set_for_the_block_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", "the user's key")
    monkeypatch.delenv("BINANCE_API_SECRET", raising=False)
    demo = Settings(api_key=Secret("sandbox-api-key"), api_secret=Secret("sandbox-api-secret"))
    with exported_secrets(demo):
        assert os.environ["BINANCE_API_KEY"] == "sandbox-api-key"
        assert os.environ["BINANCE_API_SECRET"] == "sandbox-api-secret"
    assert os.environ["BINANCE_API_KEY"] == "the user's key"
    assert "BINANCE_API_SECRET" not in os.environ


def _readme_configuration() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def _shown_default(field) -> str:
    extra = field.json_schema_extra
    if extra["shown_default"] is not None:
        return extra["shown_default"]
    value = field.default
    if value is None or value == ():
        return "—"
    return f"`{value.isoformat() if isinstance(value, date) else value}`"


def test_readme_configuration_table_is_exactly_what_settings_reads() -> None:
    want = [
        [f"`{field.alias}`", str(field.json_schema_extra["allowed"]), _shown_default(field), str(field.description)]
        for field in Settings.model_fields.values()
    ]
    assert _readme_configuration() == want


def _environment_reads(path: Path) -> list[str]:
    """Every ``os.environ`` / ``os.getenv`` / ``os.putenv`` use and every ``from os import environ|getenv``."""
    names = {"environ", "getenv", "putenv", "environb", "unsetenv"}
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        attribute = (
            isinstance(node, ast.Attribute)
            and node.attr in names
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        )
        imported = isinstance(node, ast.ImportFrom) and node.module == "os" and {a.name for a in node.names} & names
        if attribute or imported:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_module_but_settings_reads_the_environment() -> None:
    files = [p for top in ("pipeline", "assets", "bench") for p in sorted((ROOT / top).rglob("*.py"))]
    assert len(files) > 50
    reads = [hit for p in files if p != ROOT / "pipeline" / "settings.py" for hit in _environment_reads(p)]
    assert reads == []
    assert _environment_reads(ROOT / "pipeline" / "settings.py")  # the scan does see a read where there is one

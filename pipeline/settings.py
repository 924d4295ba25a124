"""Settings: every environment variable of the README's Configuration table, typed and checked in one place.

This is the only module that reads the environment. The ``orderlake`` command and the Dagster code location call
:meth:`Settings.from_env` once at start; everything else takes explicit arguments. A malformed value fails there,
with one line that names the variable, the value and what is allowed. Secrets are :class:`Secret` wrappers; the
Dagster resources pass them on as ``EnvVar`` references, never as values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from types import FunctionType
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.errors import ConfigurationError

PRODUCTION_URLS = {
    "spot": "https://api.binance.com",
    "ws_api": "wss://ws-api.binance.com:443/ws-api/v3",
    "futures": "https://fapi.binance.com",
    "papi": "https://papi.binance.com",
}
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
BOOLEAN = "boolean: 1/true/yes/on or 0/false/no/off"
Transport = Literal["rest", "ws"]
Probe = Literal["auto", "full", "targeted", "off"]
BUDGET_URL_SCHEMES = ("postgres", "postgresql", "redis", "rediss")
Executor = Literal["multiprocess", "celery", "k8s"]


class Secret:
    """A string that refuses to show itself; call :meth:`reveal` at the one place that needs it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):  # pickling would copy the secret into Dagster storage or subprocess args
        raise TypeError("Secret values cannot be pickled")


def parse_bool(text: str | bool) -> bool:
    """The one boolean syntax of every boolean variable."""
    if isinstance(text, bool):
        return text
    word = str(text).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("not a boolean")


def default_budget_dir(env: Mapping[str, str] | None = None) -> Path:
    """A per-user directory, never a shared temp dir: ``$XDG_RUNTIME_DIR/orderlake-budget`` (a tmpfs only this user
    can enter), else ``$XDG_CACHE_HOME`` or ``~/.cache``, then ``orderlake/budget``. The store creates it 0700."""
    env = os.environ if env is None else env
    runtime = (env.get("XDG_RUNTIME_DIR") or "").strip()
    if runtime and Path(runtime).is_absolute():
        return Path(runtime) / "orderlake-budget"
    cache = (env.get("XDG_CACHE_HOME") or "").strip()
    base = Path(cache) if cache and Path(cache).is_absolute() else Path(os.path.expanduser("~")) / ".cache"
    return base / "orderlake" / "budget"


_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_CRON_NAMES = {
    "month": ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    "day of week": ("sun", "mon", "tue", "wed", "thu", "fri", "sat"),
}
_CRON_ITEM = re.compile(r"^(\*|(\w+)(?:-(\w+))?)(?:/(\d+))?$")


def check_cron(text: str) -> str:
    """Five fields (minute hour day-of-month month day-of-week) of numbers, ranges, steps, lists or names."""
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"a cron expression has 5 fields, this one has {len(fields)}")
    for value, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        names = _CRON_NAMES.get(name, ())
        for item in value.split(","):
            m = _CRON_ITEM.match(item.lower())
            if m is None or (m.group(4) is not None and int(m.group(4)) == 0):
                raise ValueError(f"{name} field {value!r} is not a number, range, step or list")
            for part in (m.group(2), m.group(3)):
                if part is None:
                    continue
                number = names.index(part) + low if part in names else int(part) if part.isdigit() else None
                if number is None or not low <= number <= high:
                    raise ValueError(f"{name} field {value!r} is outside {low}-{high}")
    return " ".join(fields)


def _setting(
    variable: str, default: Any, allowed: str, meaning: str, *, shown_default: str | None = None, **bounds: Any
) -> Any:
    """A field read from ``variable``; ``allowed`` and ``meaning`` are what the README's table says about it.
    A ``default`` that is a function is called for each Settings (nothing is fixed at import)."""
    extra = {"allowed": allowed, "shown_default": shown_default}
    if isinstance(default, FunctionType):
        return Field(default_factory=default, alias=variable, description=meaning, json_schema_extra=extra, **bounds)
    return Field(default, alias=variable, description=meaning, json_schema_extra=extra, **bounds)


class Settings(BaseModel):
    """Everything orderlake reads from the environment; build it with :meth:`from_env` or with field names."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, validate_by_name=True, validate_by_alias=True
    )

    api_key: Secret | None = _setting("BINANCE_API_KEY", None, "text (secret)", "API key; only reading is needed")
    api_secret: Secret | None = _setting("BINANCE_API_SECRET", None, "text (secret)", "HMAC-SHA256 secret")
    private_key_file: Path | None = _setting(
        "BINANCE_PRIVATE_KEY_FILE",
        None,
        "path",
        "Ed25519 or RSA private key (PEM, PKCS#8), used instead of the secret",
    )
    private_key_password: Secret | None = _setting(
        "BINANCE_PRIVATE_KEY_PASSWORD", None, "text (secret)", "password of an encrypted key file"
    )
    spot_url: str = _setting("BINANCE_SPOT_URL", PRODUCTION_URLS["spot"], "http(s) URL", "spot REST")
    ws_api_url: str = _setting("BINANCE_WS_API_URL", PRODUCTION_URLS["ws_api"], "ws(s) URL", "spot WebSocket API")
    futures_url: str = _setting("BINANCE_FUTURES_URL", PRODUCTION_URLS["futures"], "http(s) URL", "USDⓈ-M futures")
    papi_url: str = _setting("BINANCE_PAPI_URL", PRODUCTION_URLS["papi"], "http(s) URL", "Portfolio Margin")
    spot_transport: Transport = _setting(
        "BINANCE_SPOT_TRANSPORT",
        "rest",
        "`rest` or `ws`",
        "spot transport: REST or the WebSocket API; both give identical rows",
    )
    data_dir: Path = _setting("ORDERLAKE_DATA_DIR", Path("data"), "path", "lake, raw files, state, catalog")
    account: str = _setting(
        "ORDERLAKE_ACCOUNT",
        "main",
        "name without `/`, `\\`, `=` or spaces",
        "account name (the `account=` partition); several accounts can share a data dir",
    )
    accounts_file: Path | None = _setting(
        "ORDERLAKE_ACCOUNTS_FILE",
        None,
        "path to a TOML file",
        "many accounts in one deployment (docs/design/fleet.md): each account's name, markets, key sources, start date "
        "and hosts; unset: the one account of `ORDERLAKE_ACCOUNT` and `BINANCE_*`",
    )
    executor: Executor = _setting(
        "ORDERLAKE_EXECUTOR",
        "multiprocess",
        "`multiprocess`, `celery` or `k8s`",
        "where the steps of the many-account job run: processes of the run, Celery workers (`celery` extra, "
        "`ORDERLAKE_CELERY_URL`) or Kubernetes jobs (`k8s` extra)",
    )
    celery_url: Secret | None = _setting(
        "ORDERLAKE_CELERY_URL",
        None,
        "`redis://…` URL (secret)",
        "Celery broker and result backend of `ORDERLAKE_EXECUTOR=celery`",
    )
    start_date: date = _setting("ORDERLAKE_START_DATE", date(2024, 1, 1), "date YYYY-MM-DD", "first daily partition")
    spot_symbols: tuple[str, ...] = _setting(
        "ORDERLAKE_SPOT_SYMBOLS",
        (),
        "comma-separated symbols",
        "symbols always queried: the only way to reach delisted pairs",
    )
    futures_symbols: tuple[str, ...] = _setting(
        "ORDERLAKE_FUTURES_SYMBOLS",
        (),
        "comma-separated symbols",
        "USDⓈ-M and PM UM symbols always queried where Binance requires a symbol (delisted contracts)",
    )
    monthly_reconciliation: bool = _setting(
        "ORDERLAKE_MONTHLY_RECONCILIATION",
        False,
        BOOLEAN,
        "request one export per futures market a month to reconcile with REST (spends a download id)",
        shown_default="`false`",
    )
    spot_probe: Probe = _setting(
        "ORDERLAKE_SPOT_PROBE",
        "auto",
        "`auto`, `full`, `targeted` or `off`",
        "symbol discovery: `auto` (full probe on an account's first backfill, then only new candidates), `full` "
        "(re-probe every listed symbol), `targeted` (never the full probe), `off`",
    )
    export_monthly_limit: int | None = _setting(
        "ORDERLAKE_EXPORT_MONTHLY_LIMIT",
        None,
        "integer 0–1000",
        "order-history download ids per endpoint per month that orderlake may spend (the website shares "
        "Binance's quota)",
        shown_default="Binance's quota (`10`)",
        ge=0,
        le=1000,
    )
    export_trade_monthly_limit: int | None = _setting(
        "ORDERLAKE_EXPORT_TRADE_MONTHLY_LIMIT",
        None,
        "integer 0–1000",
        "trade-history download ids per endpoint (USDⓈ-M, PM) per month that orderlake may spend",
        shown_default="Binance's quota (`5`)",
        ge=0,
        le=1000,
    )
    export_income_monthly_limit: int | None = _setting(
        "ORDERLAKE_EXPORT_INCOME_MONTHLY_LIMIT",
        None,
        "integer 0–1000",
        "transaction (income) history download ids per endpoint per month that orderlake may spend",
        shown_default="Binance's quota (`5`)",
        ge=0,
        le=1000,
    )
    export_cron: str = _setting(
        "ORDERLAKE_EXPORT_CRON",
        "45 0 * * *",
        "cron expression (5 fields)",
        "when the export-needs schedule looks for days only an export can still give (UTC)",
    )
    export_utc_offset_minutes: int | None = _setting(
        "ORDERLAKE_EXPORT_UTC_OFFSET_MINUTES",
        None,
        "integer −720–840",
        "display time zone of export files when it cannot be proven from REST orders; it wins over the file's "
        "`(UTC…)` labels and settles labels that disagree",
        ge=-720,
        le=840,
    )
    export_max_download_bytes: int = _setting(
        "ORDERLAKE_EXPORT_MAX_DOWNLOAD_BYTES",
        4 * 1024**3,
        "integer ≥ 1",
        "largest export file downloaded (real exports reach hundreds of MB)",
        shown_default="`4294967296` (4 GiB)",
        ge=1,
    )
    export_max_download_seconds: float = _setting(
        "ORDERLAKE_EXPORT_MAX_DOWNLOAD_SECONDS",
        3600.0,
        "number > 0",
        "longest time one export file transfer may take",
        shown_default="`3600`",
        gt=0,
    )
    budget_dir: Path = _setting(
        "ORDERLAKE_BUDGET_DIR",
        default_budget_dir,
        "path",
        "weight budget state shared by every orderlake process of this user (mode 0700, owner checked)",
        shown_default="`$XDG_RUNTIME_DIR/orderlake-budget`, else `~/.cache/orderlake/budget`",
    )
    budget_url: Secret | None = _setting(
        "ORDERLAKE_BUDGET_URL",
        None,
        "`postgresql://…` or `redis://…` URL (secret)",
        "weight budget shared by every worker on every machine (instead of files in `ORDERLAKE_BUDGET_DIR`)",
    )
    egress_ip: str | None = _setting(
        "ORDERLAKE_EGRESS_IP",
        None,
        "text",
        "the IP Binance sees from this worker (or a name for it): workers with the same value share one budget",
    )
    lake_url: str | None = _setting(
        "ORDERLAKE_LAKE_URL",
        None,
        "`s3://bucket/prefix`",
        "where the Parquet lake lives (S3 endpoint, region and credentials from the `AWS_*` variables)",
        shown_default="`$ORDERLAKE_DATA_DIR/lake`",
    )
    aws_access_key_id: Secret | None = _setting(
        "AWS_ACCESS_KEY_ID", None, "text (secret)", "object store access key (with `ORDERLAKE_LAKE_URL=s3://…`)"
    )
    aws_secret_access_key: Secret | None = _setting(
        "AWS_SECRET_ACCESS_KEY", None, "text (secret)", "object store secret key"
    )
    aws_session_token: Secret | None = _setting(
        "AWS_SESSION_TOKEN", None, "text (secret)", "temporary credentials' session token"
    )
    aws_region: str | None = _setting(
        "AWS_REGION", None, "region name", "object store region", shown_default="`us-east-1`"
    )
    aws_endpoint_url: str | None = _setting(
        "AWS_ENDPOINT_URL",
        None,
        "http(s) URL",
        "S3-compatible endpoint (MinIO, SeaweedFS, Ceph, …); unset: AWS",
    )
    snapshot_grace_seconds: float = _setting(
        "ORDERLAKE_SNAPSHOT_GRACE_SECONDS",
        3600.0,
        "number ≥ 0",
        "how long an old catalog's lake snapshot is kept for readers still using it",
        shown_default="`3600`",
        ge=0,
    )
    allow_http_loopback: bool = _setting(
        "ORDERLAKE_ALLOW_HTTP_LOOPBACK",
        False,
        BOOLEAN,
        "true lets export files come over http from 127.0.0.1 (the sandbox); otherwise only https",
        shown_default="`false`",
    )
    time_scale: float = _setting(
        "ORDERLAKE_TIME_SCALE",
        1.0,
        "number > 0",
        "the sandbox's `--time-scale`: the export chain's pacing is divided by it",
        shown_default="`1`",
        gt=0,
    )
    dagster_home: Path | None = _setting(
        "DAGSTER_HOME",
        None,
        "path",
        "Dagster instance (run history, schedules, sensors); unset: `orderlake backfill` keeps no runs",
        shown_default="`.dagster` under `make`",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings of this process (or of ``env``); a variable that is empty counts as unset."""
        env = os.environ if env is None else env
        given = {name: env[name].strip() for name in variables() if (env.get(name) or "").strip()}
        try:
            settings = cls.model_validate(given)
        except ValidationError as exc:
            raise ConfigurationError(explain(exc, given)) from None
        if settings.accounts_file is not None:  # strict at start: every account's key source must be there
            from pipeline.accounts import load_accounts

            load_accounts(settings.accounts_file, settings, env)
        return settings

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (by field name), validated like the original."""
        return type(self).model_validate({**{name: getattr(self, name) for name in type(self).model_fields}, **changes})

    def environment(self) -> dict[str, str]:
        """These settings as the variables :meth:`from_env` reads back (secrets revealed): for a child process."""
        out = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, Secret):
                text = value.reveal()
            elif isinstance(value, tuple):
                text = ",".join(value)
            elif isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, date):
                text = value.isoformat()
            else:
                text = str(value)
            out[str(field.alias)] = text
        return out

    def secret_environment(self) -> dict[str, str]:
        """The secrets that are set, by variable: what the resources' ``EnvVar`` references resolve at run start."""
        secret = {str(f.alias) for f in type(self).model_fields.values() if Secret in get_args(f.annotation)}
        return {name: value for name, value in self.environment().items() if name in secret}

    @field_validator(
        "api_key",
        "api_secret",
        "private_key_password",
        "celery_url",
        "budget_url",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        mode="before",
    )
    @classmethod
    def _secret(cls, value: Any) -> Secret | None:
        if value is None or isinstance(value, Secret):
            return value or None
        return Secret(str(value)) if str(value) else None

    @field_validator("spot_url", "futures_url", "papi_url", "aws_endpoint_url", mode="before")
    @classmethod
    def _http_url(cls, value: Any) -> str | None:
        return None if value is None else _url(str(value), ("http", "https")).rstrip("/")

    @field_validator("budget_url", mode="after")
    @classmethod
    def _budget_url(cls, value: Secret | None) -> Secret | None:
        if value is not None and urlsplit(value.reveal()).scheme.lower() not in BUDGET_URL_SCHEMES:
            raise ValueError("not a postgresql:// or redis:// URL")
        return value

    @field_validator("lake_url", mode="before")
    @classmethod
    def _lake_url(cls, value: Any) -> str | None:
        if value is None:
            return None
        text = str(value).strip()
        parts = urlsplit(text)
        if parts.scheme != "s3" or not parts.netloc or not parts.netloc.replace("-", "").replace(".", "").isalnum():
            raise ValueError("not an s3://bucket/prefix URL")
        return text.rstrip("/")

    @field_validator("ws_api_url", mode="before")
    @classmethod
    def _ws_url(cls, value: Any) -> str:
        return _url(str(value), ("ws", "wss"))

    @field_validator("spot_transport", "spot_probe", "executor", mode="before")
    @classmethod
    def _choice(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("account", mode="before")
    @classmethod
    def _account(cls, value: Any) -> str:
        text = str(value).strip()
        if not text or text in (".", "..") or re.search(r"[/\\=\s]", text):
            raise ValueError("not usable as a path component")
        return text

    @field_validator("start_date", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                raise ValueError("not a date YYYY-MM-DD") from None
        return value

    @field_validator("spot_symbols", "futures_symbols", mode="before")
    @classmethod
    def _symbols(cls, value: Any) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else value
        return tuple(sorted({s.strip().upper() for s in items if s.strip()}))

    @field_validator("export_cron", mode="before")
    @classmethod
    def _cron(cls, value: Any) -> str:
        return check_cron(str(value))

    @field_validator("allow_http_loopback", mode="before")
    @classmethod
    def _bool(cls, value: Any) -> bool:
        return parse_bool(value)


@contextmanager
def exported_secrets(settings: Settings) -> Iterator[None]:
    """Make the secrets of a Settings built in code (the sandbox demo's generated keys) resolvable by the
    resources' ``EnvVar`` references, in this process and for the duration of the block only."""
    values = settings.secret_environment()
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def child_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """The environment for a child process (PATH, HOME, locale…) without any BINANCE_*, ORDERLAKE_*, AWS_* or
    DAGSTER_* variable of this process, plus ``overrides``: the child sees exactly the settings it is given."""
    own = ("BINANCE_", "ORDERLAKE_", "AWS_", "DAGSTER_")
    return {k: v for k, v in os.environ.items() if not k.startswith(own)} | dict(overrides)


def _url(text: str, schemes: tuple[str, ...]) -> str:
    text = text.strip()
    parts = urlsplit(text)
    if parts.scheme not in schemes or not parts.netloc:
        raise ValueError(f"not a {'/'.join(schemes)} URL with a host")
    return text


def variables() -> list[str]:
    """Every variable Settings reads, in the README's order."""
    return [str(f.alias) for f in Settings.model_fields.values()]


def explain(exc: ValidationError, given: Mapping[str, str]) -> str:
    """One line: each bad variable, its value (never a secret's) and what is allowed."""
    fields = {str(f.alias): f for f in Settings.model_fields.values()}
    problems = []
    for error in exc.errors():
        variable = str(error["loc"][0]) if error["loc"] else "?"
        field = fields.get(variable)
        if field is None:
            problems.append(str(error["msg"]))
            continue
        allowed = str(field.json_schema_extra["allowed"]).replace("`", "")  # type: ignore[index]
        shown = "<hidden>" if Secret in get_args(field.annotation) else repr(given.get(variable))
        reason = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{variable}={shown} is invalid ({reason}); allowed: {allowed}")
    return "invalid configuration: " + "; ".join(problems)

"""The fleet: the Binance accounts of one deployment, from an accounts file (ORDERLAKE_ACCOUNTS_FILE, TOML).

Each account names its market surfaces, the environment variables or files that hold its key (never the key
itself), its first day and optionally its API hosts. Without a file the fleet is the one account of the
``BINANCE_*`` and ``ORDERLAKE_ACCOUNT`` variables. Loading is strict: an unknown key, a bad name, date, market or
URL, or a key source that is not there stops with one line that names the file, the account and the field.
Secrets are read only by :meth:`KeySource.read`, at the moment a client is built. Design: docs/design/fleet.md.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline.errors import ConfigurationError
from pipeline.settings import PRODUCTION_URLS, Secret, Settings

MARKETS = ("spot", "usdm", "pm")
HOSTS = ("spot_url", "ws_api_url", "futures_url", "papi_url")
_KEYS = ("api_key", "api_secret", "private_key_password")  # each from `<name>_env` or `<name>_file`
_PLAIN = {"markets", "start_date", "spot_symbols", "hosts", "private_key_file"}
_ALLOWED = _PLAIN | {f"{k}_{how}" for k in _KEYS for how in ("env", "file")}
_DEFAULTS = _PLAIN - {"private_key_file"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SYMBOL = re.compile(r"^[A-Z0-9]{2,30}$")
_HELP = "the format: deploy/accounts.example.toml"


@dataclass(frozen=True)
class KeySource:
    """Where one secret lives: the name of an environment variable, or a file that holds only the value."""

    env: str | None = None
    file: Path | None = None

    def describe(self) -> str:
        return f"${self.env}" if self.env else f"file {self.file}"

    def read(self, env: Mapping[str, str]) -> Secret | None:
        """The secret, from ``env`` (the process environment as Settings read it) or from the file."""
        if self.env:
            value = (env.get(self.env) or "").strip()
        else:
            assert self.file is not None
            try:
                value = self.file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigurationError(f"cannot read the key file {self.file}: {exc.strerror}") from None
        return Secret(value) if value else None


@dataclass(frozen=True)
class Account:
    """One Binance account of the fleet: its name (the lake's ``account=``), surfaces, key sources and hosts."""

    name: str
    markets: tuple[str, ...] = MARKETS
    start_date: date = date(2024, 1, 1)
    api_key: KeySource | None = None
    api_secret: KeySource | None = None
    private_key_file: Path | None = None
    private_key_password: KeySource | None = None
    spot_symbols: tuple[str, ...] = ()
    hosts: Mapping[str, str] = field(default_factory=lambda: dict(PRODUCTION_URLS_BY_FIELD))

    def has(self, market: str) -> bool:
        return market in self.markets

    def settings(self, base: Settings, env: Mapping[str, str]) -> Settings:
        """``base`` as this account sees it: its name, first day, symbols, hosts and secrets (read now)."""
        return base.replace(
            account=self.name,
            start_date=self.start_date,
            spot_symbols=self.spot_symbols or base.spot_symbols,
            api_key=self.api_key.read(env) if self.api_key else None,
            api_secret=self.api_secret.read(env) if self.api_secret else None,
            private_key_file=self.private_key_file,
            private_key_password=self.private_key_password.read(env) if self.private_key_password else None,
            **dict(self.hosts),
        )

    def env_names(self) -> tuple[str, ...]:
        """The environment variables this account's key lives in (what a worker must be given)."""
        sources = (self.api_key, self.api_secret, self.private_key_password)
        return tuple(s.env for s in sources if s is not None and s.env)


PRODUCTION_URLS_BY_FIELD = {f"{k}_url": v for k, v in PRODUCTION_URLS.items()}


@dataclass(frozen=True)
class Fleet:
    """The accounts of a deployment, in file order; ``path`` is None for the implicit one-account fleet."""

    accounts: tuple[Account, ...]
    path: Path | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.accounts)

    def __getitem__(self, name: str) -> Account:
        for account in self.accounts:
            if account.name == name:
                return account
        raise ConfigurationError(f"no account {name!r} in {self.path or 'the environment'}; known: {self.names}")

    @property
    def first_day(self) -> date:
        return min(a.start_date for a in self.accounts)


def fleet_of(settings: Settings, env: Mapping[str, str] | None = None) -> Fleet:
    """The accounts file of ``settings`` if one is set, else the one account the ``BINANCE_*`` variables describe.
    With ``env`` (the environment Settings was read from), every key source is checked to be there."""
    if settings.accounts_file is None:
        return Fleet((implicit_account(settings),))
    return load_accounts(settings.accounts_file, settings, env)


def implicit_account(settings: Settings) -> Account:
    """The single-account setup as a fleet of one: the key in BINANCE_API_KEY / _SECRET / _PRIVATE_KEY_*."""
    return Account(
        name=settings.account,
        start_date=settings.start_date,
        api_key=KeySource(env="BINANCE_API_KEY") if settings.api_key else None,
        api_secret=KeySource(env="BINANCE_API_SECRET") if settings.api_secret else None,
        private_key_file=settings.private_key_file,
        private_key_password=KeySource(env="BINANCE_PRIVATE_KEY_PASSWORD") if settings.private_key_password else None,
        spot_symbols=settings.spot_symbols,
        hosts={h: getattr(settings, h) for h in HOSTS},
    )


def load_accounts(path: Path, settings: Settings, env: Mapping[str, str] | None = None) -> Fleet:
    """Parse and check the accounts file; one :class:`ConfigurationError` line names what is wrong and where."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"ORDERLAKE_ACCOUNTS_FILE={str(path)!r}: cannot read it ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"accounts file {path}: not valid TOML ({exc}); {_HELP}") from None
    return parse_accounts(doc, path, settings, env)


def parse_accounts(
    doc: Mapping[str, Any], path: Path, settings: Settings, env: Mapping[str, str] | None = None
) -> Fleet:
    def fail(where: str, what: str) -> ConfigurationError:
        return ConfigurationError(f"accounts file {path}: {where}: {what}; {_HELP}")

    unknown = set(doc) - {"defaults", "accounts"}
    if unknown:
        raise fail("top level", f"unknown table(s) {sorted(unknown)}; allowed: [defaults], [accounts.<name>]")
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise fail("[defaults]", "must be a table")
    if extra := set(defaults) - _DEFAULTS:
        raise fail("[defaults]", f"unknown or per-account key(s) {sorted(extra)}; allowed: {sorted(_DEFAULTS)}")
    accounts = doc.get("accounts")
    if not isinstance(accounts, Mapping) or not accounts:
        raise fail("[accounts]", "no account; add at least one [accounts.<name>] table")
    base = _account_fields("[defaults]", dict(defaults), path.parent, settings, fail)
    out = []
    for name, body in accounts.items():
        where = f"[accounts.{name}]"
        if not _NAME.match(name):
            raise fail(where, "a name is 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
        if not isinstance(body, Mapping):
            raise fail(where, "must be a table")
        if extra := set(body) - _ALLOWED:
            raise fail(where, f"unknown key(s) {sorted(extra)}; allowed: {sorted(_ALLOWED)}")
        fields_ = {**base, **_account_fields(where, dict(body), path.parent, settings, fail)}
        hosts = {**PRODUCTION_URLS_BY_FIELD, **base.get("hosts", {}), **fields_.get("hosts", {})}
        account = Account(name=name, **{**fields_, "hosts": hosts})
        _check_keys(where, account, env, fail)
        out.append(account)
    folded = {}
    for a in out:  # the lake's account= directories must not collide on a case-insensitive disk
        if (twin := folded.setdefault(a.name.lower(), a.name)) != a.name:
            raise fail(f"[accounts.{a.name}]", f"differs from [accounts.{twin}] only in case")
    return Fleet(tuple(out), path)


def _account_fields(where: str, body: dict[str, Any], here: Path, settings: Settings, fail) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "markets" in body:
        markets = body["markets"]
        if not isinstance(markets, list) or not markets or any(m not in MARKETS for m in markets):
            raise fail(where, f"markets={markets!r}: a non-empty list of {list(MARKETS)}")
        out["markets"] = tuple(m for m in MARKETS if m in markets)
    start = body.get("start_date", settings.start_date if where == "[defaults]" else None)
    if start is not None:
        if isinstance(start, str):
            try:
                start = date.fromisoformat(start)
            except ValueError:
                raise fail(where, f"start_date={start!r} is not a date YYYY-MM-DD") from None
        if not isinstance(start, date) or hasattr(start, "hour"):
            raise fail(where, f"start_date={start!r} is not a date YYYY-MM-DD")
        out["start_date"] = start
    if "spot_symbols" in body:
        symbols = body["spot_symbols"]
        if not isinstance(symbols, list) or any(not isinstance(s, str) or not _SYMBOL.match(s) for s in symbols):
            raise fail(where, f"spot_symbols={symbols!r}: a list of upper-case symbols such as 'LUNAUSDT'")
        out["spot_symbols"] = tuple(sorted(set(symbols)))
    if "hosts" in body:
        out["hosts"] = _hosts(where, body["hosts"], fail)
    if "private_key_file" in body:
        out["private_key_file"] = _path(here, body["private_key_file"], where, "private_key_file", fail)
    for key in _KEYS:
        given = [how for how in ("env", "file") if f"{key}_{how}" in body]
        if len(given) == 2:
            raise fail(where, f"{key}_env and {key}_file are both set; keep one")
        if given == ["env"]:
            name = body[f"{key}_env"]
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise fail(where, f"{key}_env={name!r} must be the NAME of an environment variable, not a key")
            out[key] = KeySource(env=name)
        elif given == ["file"]:
            out[key] = KeySource(file=_path(here, body[f"{key}_file"], where, f"{key}_file", fail))
    return out


def _hosts(where: str, hosts: Any, fail) -> dict[str, str]:
    if not isinstance(hosts, Mapping) or set(hosts) - set(HOSTS):
        raise fail(where, f"hosts must be a table of {list(HOSTS)}")
    out = {}
    for name, url in hosts.items():
        schemes = ("ws", "wss") if name == "ws_api_url" else ("http", "https")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in schemes or not parts.netloc:
            raise fail(where, f"hosts.{name}={url!r} is not a {'/'.join(schemes)} URL with a host")
        out[name] = url if name == "ws_api_url" else url.rstrip("/")
    return out


def _path(here: Path, value: Any, where: str, key: str, fail) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise fail(where, f"{key} must be a path")
    path = Path(value).expanduser()
    return path if path.is_absolute() else here / path


def _check_keys(where: str, a: Account, env: Mapping[str, str] | None, fail) -> None:
    if a.api_secret and a.private_key_file:
        raise fail(where, "api_secret_* and private_key_file are both set; a Binance key has one type, keep one")
    if (a.api_secret or a.private_key_file) and a.api_key is None:
        raise fail(where, "a secret or private key without api_key_env / api_key_file")
    if a.private_key_password and not a.private_key_file:
        raise fail(where, "private_key_password_* without private_key_file")
    if env is None:
        return
    for key in ("api_key", "api_secret", "private_key_password"):
        source = getattr(a, key)
        if source is None:
            continue
        if source.env and not (env.get(source.env) or "").strip():
            raise fail(
                where,
                f"{key}_env names ${source.env}, which is not set (set it in the environment of "
                "every process that runs this account, or use a file)",
            )
        if source.file and not source.file.is_file():
            raise fail(where, f"{key}_file {source.file} does not exist")
    if a.private_key_file and not a.private_key_file.is_file():
        raise fail(where, f"private_key_file {a.private_key_file} does not exist")

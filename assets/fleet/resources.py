"""The accounts of a many-account deployment as one resource: per account its markets, hosts and key references.

A key named by an environment variable is an ``EnvVar`` (resolved when a step starts, never stored); a key in a
file is read by the step. What every account shares (the weight budget, the data dir, export pacing, the probe
mode) comes from the single-account resources, which this one copies with the account's fields swapped in.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from assets.common.resources import BinanceResource, LakeResource
from assets.exports.resources import ExportsResource
from assets.spot.resources import SpotResource
from pipeline.accounts import Account, Fleet, KeySource
from pipeline.exports.chain import ExportChain
from pipeline.settings import Secret


class AccountConfig(dg.Config):
    """One account: key references (an ``EnvVar`` or a file path, never a value in storage) and its hosts."""

    markets: list[str]
    start_date: str
    api_key: str | None = None
    api_key_file: str | None = None
    api_secret: str | None = None
    api_secret_file: str | None = None
    private_key_file: str | None = None
    private_key_password: str | None = None
    private_key_password_file: str | None = None
    spot_symbols: list[str]
    spot_url: str
    ws_api_url: str
    futures_url: str
    papi_url: str

    @classmethod
    def of(cls, account: Account) -> AccountConfig:
        def ref(source: KeySource | None) -> tuple[dg.EnvVar | None, str | None]:
            if source is None:
                return None, None
            return (dg.EnvVar(source.env), None) if source.env else (None, str(source.file))

        key, key_file = ref(account.api_key)
        secret, secret_file = ref(account.api_secret)
        password, password_file = ref(account.private_key_password)
        return cls(
            markets=list(account.markets),
            start_date=account.start_date.isoformat(),
            api_key=key,
            api_key_file=key_file,
            api_secret=secret,
            api_secret_file=secret_file,
            private_key_file=str(account.private_key_file) if account.private_key_file else None,
            private_key_password=password,
            private_key_password_file=password_file,
            spot_symbols=list(account.spot_symbols),
            **dict(account.hosts),
        )

    def secret(self, field: str) -> str | None:
        """The value of a key field: the resolved ``EnvVar``, or the file's content."""
        path = getattr(self, f"{field}_file")
        if path:
            value = KeySource(file=Path(path)).read({})
            return value.reveal() if isinstance(value, Secret) else None
        return getattr(self, field)


class FleetResource(dg.ConfigurableResource):
    """Every account of the accounts file; :meth:`binance`, :meth:`lake`, :meth:`spot` and :meth:`exports` give the
    single-account resources of one account."""

    accounts: dict[str, AccountConfig]
    binance_template: BinanceResource  # shared: budget, transport
    lake_template: LakeResource  # shared: the data dir
    spot_template: SpotResource  # shared: the probe mode
    exports_template: ExportsResource  # shared: quota limit, pacing, download limits

    @classmethod
    def of(
        cls,
        fleet: Fleet,
        binance: BinanceResource,
        lake: LakeResource,
        spot: SpotResource,
        exports: ExportsResource,
    ) -> FleetResource:
        return cls(
            accounts={a.name: AccountConfig.of(a) for a in fleet.accounts},
            binance_template=binance,
            lake_template=lake,
            spot_template=spot,
            exports_template=exports,
        )

    def account(self, name: str) -> AccountConfig:
        try:
            return self.accounts[name]
        except KeyError:
            raise dg.Failure(f"account {name!r} is not in the accounts file", allow_retries=False) from None

    def start_date(self, name: str) -> date:
        return date.fromisoformat(self.account(name).start_date)

    def binance(self, name: str) -> BinanceResource:
        a = self.account(name)
        fields = {f: getattr(self.binance_template, f) for f in BinanceResource.model_fields}
        if "account" in fields:  # a client checks its account's recorded identity (issue 11): this account's
            fields["account"] = name
        return BinanceResource(
            **{
                **fields,
                "api_key": a.secret("api_key"),
                "api_secret": a.secret("api_secret"),
                "private_key_file": a.private_key_file,
                "private_key_password": a.secret("private_key_password"),
                "spot_url": a.spot_url,
                "ws_api_url": a.ws_api_url,
                "futures_url": a.futures_url,
                "papi_url": a.papi_url,
                "account": name,  # its identity is recorded and checked per account (pipeline/identity.py)
            }
        )

    def lake(self, name: str) -> LakeResource:
        return LakeResource(
            **{**{f: getattr(self.lake_template, f) for f in LakeResource.model_fields}, "account": name}
        )

    def spot(self, name: str) -> SpotResource:
        symbols = sorted(set(self.spot_template.symbols) | set(self.account(name).spot_symbols))
        return SpotResource(symbols=symbols, probe=self.spot_template.probe)

    def export_chain(self, name: str, binance: BinanceResource) -> ExportChain:
        fields = {f: getattr(self.exports_template, f) for f in ExportsResource.model_fields}
        return ExportsResource(**{**fields, "binance": binance, "lake": self.lake(name)}).chain()

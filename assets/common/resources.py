"""The resources every source shares: the Binance account and the lake, built from :class:`Settings`.

Secrets are ``EnvVar`` references, resolved when a run starts, so their values never reach run config, the UI
or Dagster's storage. Everything else is a plain value taken from the Settings the code location was built with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from assets.common.partitions import daily_partitions
from assets.common.recovery import process_tags
from pipeline import identity
from pipeline.binance import BinanceClient
from pipeline.binance.credentials import Credentials
from pipeline.settings import PRODUCTION_URLS, Secret, Settings
from pipeline.storage import lakefs


def secret_reference(settings: Settings, field: str) -> dg.EnvVar | None:
    """An ``EnvVar`` naming the variable of a secret that is set (its value is resolved at run start, never
    stored), else None."""
    return dg.EnvVar(str(Settings.model_fields[field].alias)) if getattr(settings, field) else None


def _secret(value: str | None) -> Secret | None:
    return Secret(value) if value else None


class BinanceResource(dg.ConfigurableResource):
    """Credentials and endpoints of one Binance account; builds one client per run (one pooled session)."""

    api_key: str | None = None
    api_secret: str | None = None
    private_key_file: str | None = None
    private_key_password: str | None = None
    spot_url: str = PRODUCTION_URLS["spot"]
    ws_api_url: str = PRODUCTION_URLS["ws_api"]
    futures_url: str = PRODUCTION_URLS["futures"]
    papi_url: str = PRODUCTION_URLS["papi"]
    spot_transport: str = "rest"
    budget_dir: str  # ORDERLAKE_BUDGET_DIR, shared by every orderlake process of this user on the machine
    budget_url: str | None = None  # ORDERLAKE_BUDGET_URL (an EnvVar: it holds a password), shared by every machine
    egress_ip: str | None = None
    # the lake account this client fills: its recorded identity must match the key's (pipeline/identity.py)
    data_dir: str | None = None
    account: str = "main"

    _client: BinanceClient | None = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: Settings) -> BinanceResource:
        return cls(
            api_key=secret_reference(settings, "api_key"),
            api_secret=secret_reference(settings, "api_secret"),
            private_key_file=str(settings.private_key_file) if settings.private_key_file else None,
            private_key_password=secret_reference(settings, "private_key_password"),
            spot_url=settings.spot_url,
            ws_api_url=settings.ws_api_url,
            futures_url=settings.futures_url,
            papi_url=settings.papi_url,
            spot_transport=settings.spot_transport,
            budget_dir=str(settings.budget_dir),
            budget_url=secret_reference(settings, "budget_url"),
            egress_ip=settings.egress_ip,
            data_dir=str(settings.data_dir),
            account=settings.account,
        )

    @property
    def transport(self) -> str:
        return self.spot_transport

    @property
    def client(self) -> BinanceClient:
        if self._client is None:
            credentials = Credentials.load(
                _secret(self.api_key),
                _secret(self.api_secret),
                Path(self.private_key_file) if self.private_key_file else None,
                _secret(self.private_key_password),
            )
            client = BinanceClient(
                credentials,
                spot_url=self.spot_url,
                ws_api_url=self.ws_api_url,
                futures_url=self.futures_url,
                papi_url=self.papi_url,
                budget_dir=self.budget_dir,
                budget_url=self.budget_url,
                egress=self.egress_ip,
            )
            # before any request that spends weight or quota for this account; without a key nothing can be spent
            if self.data_dir is not None and self.api_key:
                identity.guard(
                    Path(self.data_dir).resolve(),
                    self.account,
                    identity.hosts_of(self.spot_url, self.futures_url, self.papi_url),
                    identity.fingerprint(self.api_key),
                    lambda: client.spot.account(omit_zero_balances=True).get("uid"),
                )
            self._client = client
        return self._client

    def spot_weight_spent(self) -> int:
        """Weight this run's client has spent on the spot limiter (REST and WS API share it)."""
        return self.client.weight_used()["spot"]

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # the process that runs the steps (the CLI's, or a run worker of `dagster dev`): if it dies holding a pool
        # slot, the next run frees the slot (assets/common/recovery.py)
        if context.instance is not None and context.run_id:
            context.instance.add_run_tags(context.run_id, process_tags())

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class LakeResource(dg.ConfigurableResource):
    """Where the lake, raw files, state and catalog live, and which account they belong to."""

    data_dir: str = "data"
    account: str = "main"
    lake_url: str | None = None  # ORDERLAKE_LAKE_URL: s3://bucket/prefix; unset: <data_dir>/lake
    aws_endpoint_url: str | None = None
    aws_region: str | None = None
    aws_access_key_id: str | None = None  # EnvVar references, resolved at run start, never stored
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LakeResource:
        lakefs.configure(settings)  # the code location's own sensors and checks read the lake too
        return cls(
            data_dir=str(settings.data_dir),
            account=settings.account,
            lake_url=settings.lake_url,
            aws_endpoint_url=settings.aws_endpoint_url,
            aws_region=settings.aws_region,
            aws_access_key_id=secret_reference(settings, "aws_access_key_id"),
            aws_secret_access_key=secret_reference(settings, "aws_secret_access_key"),
            aws_session_token=secret_reference(settings, "aws_session_token"),
        )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Bind the lake's location in the process that runs the steps (a Celery or Kubernetes worker too)."""
        if self.lake_url:
            access = lakefs.S3Access(
                self.aws_endpoint_url,
                self.aws_region or lakefs.DEFAULT_REGION,
                _secret(self.aws_access_key_id),
                _secret(self.aws_secret_access_key),
                _secret(self.aws_session_token),
            )
            lakefs.bind(self.data_dir, lakefs.from_url(self.lake_url, access))

    @property
    def path(self) -> Path:
        return Path(self.data_dir).resolve()


@dataclass(frozen=True)
class Common:
    """Built once per code location and handed to every source, so that their Definitions merge: the same
    partitions definition and the very same resource objects under the same keys."""

    partitions: dg.DailyPartitionsDefinition
    binance: BinanceResource
    lake: LakeResource

    @classmethod
    def from_settings(cls, settings: Settings) -> Common:
        return cls(
            daily_partitions(settings.start_date),
            BinanceResource.from_settings(settings),
            LakeResource.from_settings(settings),
        )

    @property
    def resources(self) -> dict[str, dg.ConfigurableResource]:
        return {"binance": self.binance, "lake": self.lake}

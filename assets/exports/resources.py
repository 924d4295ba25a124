"""The export chain of one account: the client, the ledger under state/, quota and pacing settings."""

from __future__ import annotations

import dagster as dg

from assets.common.resources import BinanceResource, LakeResource
from pipeline.exports.chain import ExportChain
from pipeline.exports.ledger import ExportLedger
from pipeline.settings import Settings


class ExportsResource(dg.ConfigurableResource):
    binance: BinanceResource
    lake: LakeResource
    monthly_limit: int | None  # ORDERLAKE_EXPORT_MONTHLY_LIMIT (None: Binance's quota), shared with the website
    trade_monthly_limit: int | None = None  # ORDERLAKE_EXPORT_TRADE_MONTHLY_LIMIT
    income_monthly_limit: int | None = None  # ORDERLAKE_EXPORT_INCOME_MONTHLY_LIMIT
    allow_http_loopback: bool  # ORDERLAKE_ALLOW_HTTP_LOOPBACK: the sandbox serves files over http
    time_scale: float  # ORDERLAKE_TIME_SCALE: the sandbox's --time-scale; pacing durations are divided by it
    utc_offset_minutes: int | None  # ORDERLAKE_EXPORT_UTC_OFFSET_MINUTES: a file's time zone unless proven
    max_download_bytes: int  # ORDERLAKE_EXPORT_MAX_DOWNLOAD_BYTES
    max_download_seconds: float  # ORDERLAKE_EXPORT_MAX_DOWNLOAD_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings, binance: BinanceResource, lake: LakeResource) -> ExportsResource:
        return cls(
            binance=binance,
            lake=lake,
            monthly_limit=settings.export_monthly_limit,
            trade_monthly_limit=settings.export_trade_monthly_limit,
            income_monthly_limit=settings.export_income_monthly_limit,
            allow_http_loopback=settings.allow_http_loopback,
            time_scale=settings.time_scale,
            utc_offset_minutes=settings.export_utc_offset_minutes,
            max_download_bytes=settings.export_max_download_bytes,
            max_download_seconds=settings.export_max_download_seconds,
        )

    def chain(self) -> ExportChain:
        data_dir = self.lake.path
        return ExportChain(
            self.binance.client,
            ExportLedger(data_dir),
            data_dir=data_dir,
            account=self.lake.account,
            monthly_limit=self.monthly_limit,
            monthly_limits={"trade": self.trade_monthly_limit, "income": self.income_monthly_limit},
            allow_http_loopback=self.allow_http_loopback,
            time_scale=1.0 / self.time_scale,
            utc_offset_minutes=self.utc_offset_minutes,
            max_download_bytes=self.max_download_bytes,
            max_download_seconds=self.max_download_seconds,
        )

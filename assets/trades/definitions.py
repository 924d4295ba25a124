"""The futures trades and income source's Definitions, built from Settings."""

from __future__ import annotations

import dagster as dg

from assets.common.resources import Common
from assets.trades.assets import TAIL_ASSETS, build_tail_asset
from pipeline.settings import Settings

TRADES = [a.name for a in TAIL_ASSETS if a.kind == "trades"]
INCOME = [a.name for a in TAIL_ASSETS if a.kind == "income"]


def build_definitions(settings: Settings, common: Common | None = None) -> dg.Definitions:
    common = common or Common.from_settings(settings)
    jobs = [
        dg.define_asset_job(
            "futures_trades_backfill",
            selection=TRADES,
            partitions_def=common.partitions,
            description="USDⓈ-M and PM trades of a range of days from REST (the last 90 days), planned from the "
            "lake's filled futures orders",
        ),
        dg.define_asset_job(
            "futures_income_backfill",
            selection=INCOME,
            partitions_def=common.partitions,
            description="USDⓈ-M and PM income records of a range of days from REST (the last 90 days)",
        ),
    ]
    return dg.Definitions(
        assets=[build_tail_asset(a, common.partitions) for a in TAIL_ASSETS], jobs=jobs, resources=common.resources
    )

"""The Definitions of a many-account deployment (an accounts file is set): the fleet's account x day assets, the
backfill job runs are launched with (one run per account), the jobs of the trade and income exports and of the
futures REST tails, their daily and monthly schedules, and the warehouse over every account."""

from __future__ import annotations

import dagster as dg

from assets.common.resources import Common
from assets.exports.resources import ExportsResource
from assets.fleet.assets import build_fleet_assets, fleet_partitions
from assets.fleet.executors import fleet_executor
from assets.fleet.fills import GROUP as FILL_GROUP
from assets.fleet.fills import JOB as FILL_JOB
from assets.fleet.fills import build_fleet_fills
from assets.fleet.resources import FleetResource
from assets.fleet.schedules import build_fleet_schedules
from assets.fleet.tails import GROUP as REST_GROUP
from assets.fleet.tails import JOB as REST_JOB
from assets.fleet.tails import build_fleet_tails
from assets.spot.resources import SpotResource
from assets.warehouse import definitions as warehouse
from pipeline.accounts import Fleet
from pipeline.settings import Settings

JOB = "fleet_backfill"


def build_definitions(settings: Settings, fleet: Fleet, common: Common | None = None) -> dg.Definitions:
    common = common or Common.from_settings(settings)
    resource = FleetResource.of(
        fleet,
        common.binance,
        common.lake,
        SpotResource.from_settings(settings),
        ExportsResource.from_settings(settings, common.binance, common.lake),
    )
    job = dg.define_asset_job(
        JOB,
        selection=dg.AssetSelection.groups("fleet"),
        partitions_def=fleet_partitions(fleet),
        executor_def=fleet_executor(settings),
        description="A range of days of one account (tag orderlake/account): spot orders and order lists, and the "
        "USDⓈ-M and PM order exports, for the markets the accounts file gives it",
    )
    rest_job = dg.define_asset_job(
        REST_JOB,
        selection=dg.AssetSelection.groups(REST_GROUP),
        partitions_def=fleet_partitions(fleet),
        executor_def=fleet_executor(settings),
        description="A range of days of one account (tag orderlake/account): its USDⓈ-M and PM orders, trades and "
        "income from REST, for the days REST still serves (90 days) and the markets the accounts file gives it",
    )
    fill_job = dg.define_asset_job(
        FILL_JOB,
        selection=dg.AssetSelection.groups(FILL_GROUP),
        partitions_def=fleet_partitions(fleet),
        executor_def=fleet_executor(settings),
        description="A range of days of one account (tag orderlake/account): its USDⓈ-M and PM trades and income "
        "from their exports, for the days older than REST's retention only. Spends quota (5 ids a month per "
        "endpoint and account, shared with the website)",
    )
    partitions = fleet_partitions(fleet)
    own = dg.Definitions(
        assets=[*build_fleet_assets(fleet), *build_fleet_fills(partitions), *build_fleet_tails(partitions)],
        jobs=[job, fill_job, rest_job],
        schedules=build_fleet_schedules(fleet, JOB, REST_JOB),
        resources={"fleet": resource},
    )
    return dg.Definitions.merge(own, warehouse.build_definitions(settings, common))

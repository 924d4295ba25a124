"""The one Definitions object of orderlake (loaded by workspace.yaml as ``assets.definitions:defs``)."""

import dagster as dg

from assets import exports, jobs, spot, warehouse
from assets.resources import BinanceResource, ExportsResource, LakeResource, SpotResource


def build_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources from the environment (README, Configuration); secrets become EnvVars, resolved at run start."""
    binance, lake = BinanceResource.from_env(), LakeResource.from_env()
    return {
        "binance": binance,
        "lake": lake,
        "spot": SpotResource.from_env(),
        "exports": ExportsResource.from_env(binance, lake),
    }


def build_definitions() -> dg.Definitions:
    """Everything in one code location; built from the environment as it is now (tests build their own)."""
    return dg.Definitions(
        assets=[
            spot.spot_symbol_index,
            spot.spot_order_history,
            spot.spot_open_orders,
            warehouse.warehouse,
            *(a for chain in exports.CHAINS for a in exports.build_chain_assets(chain)),
        ],
        jobs=[
            jobs.spot_daily_job,
            jobs.spot_backfill_job,
            jobs.export_requests_job,
            jobs.warehouse_job,
            *exports.RETRIEVAL_JOBS,
        ],
        schedules=[jobs.spot_daily_schedule, jobs.export_weekly_schedule],
        sensors=[exports.export_link_sensor, warehouse.warehouse_automation],
        resources=build_resources(),
    )


defs = build_definitions()

"""The one code location of orderlake (``assets.definitions:defs``, loaded by workspace.yaml): each source's
Definitions, built from one Settings and merged."""

from __future__ import annotations

import dagster as dg

from assets.common.recovery import stale_run_recovery
from assets.common.resources import Common
from assets.exports import definitions as exports
from assets.fleet import definitions as fleet
from assets.futures import definitions as futures
from assets.spot import definitions as spot
from assets.trades import definitions as trades
from assets.warehouse import definitions as warehouse
from pipeline.accounts import fleet_of
from pipeline.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    common = Common.from_settings(settings)  # one object per shared resource, so the sources merge
    if settings.accounts_file is not None:  # many accounts: account x day partitions (docs/design/fleet.md)
        return fleet.build_definitions(settings, fleet_of(settings), common)
    return dg.Definitions.merge(
        *(source.build_definitions(settings, common) for source in (spot, exports, futures, trades, warehouse)),
        dg.Definitions(sensors=[stale_run_recovery]),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Read the environment when Dagster loads the code location, not when this module is imported."""
    return build_definitions(Settings.from_env())

"""Partitions: one UTC day per partition, the window size Binance enforces on spot ``allOrders``."""

from __future__ import annotations

from datetime import date

import dagster as dg

# Run tags Dagster uses for a single-run partition range (BackfillPolicy.single_run) and a single partition.
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"


def daily_partitions(start_date: date) -> dg.DailyPartitionsDefinition:
    """UTC days from ``start_date`` (ORDERLAKE_START_DATE) on."""
    return dg.DailyPartitionsDefinition(start_date=start_date.isoformat(), timezone="UTC")

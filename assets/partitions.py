"""Partitions: one UTC day per partition, the window size Binance enforces on spot ``allOrders``."""

from __future__ import annotations

import dagster as dg

from pipeline.config import Settings

# Read once when the code location loads; ORDERLAKE_START_DATE is configuration, not a secret.
START_DATE = Settings.from_env().start_date

# Run tags Dagster uses for a single-run partition range (BackfillPolicy.single_run) and a single partition.
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"

daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE.isoformat(), timezone="UTC")

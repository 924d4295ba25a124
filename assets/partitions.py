"""Partitions: one UTC day per partition, the window size Binance enforces on spot ``allOrders``."""

from __future__ import annotations

import dagster as dg

from pipeline.config import Settings

# Read once when the code location loads; ORDERLAKE_START_DATE is configuration, not a secret.
START_DATE = Settings.from_env().start_date

daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE.isoformat(), timezone="UTC")

"""What every source shares: the daily partitions, the Binance and lake resources, the asset-check plumbing."""

import warnings

import dagster as dg

# BackfillPolicy on @asset is beta in Dagster 1.13 (docs/dagster.md §Single-run backfills); we rely on single-run
# range backfills on purpose, so the warning would only repeat itself on every load of the code location.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)

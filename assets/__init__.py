"""Dagster definitions of orderlake: thin assets, checks, resources, jobs, schedules and sensors over pipeline/."""

import warnings

import dagster as dg

# BackfillPolicy on @asset is beta in Dagster 1.13 (dagster-notes §1.6); we rely on single-run range backfills on
# purpose, so the warning would only repeat itself on every import of the code location.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)

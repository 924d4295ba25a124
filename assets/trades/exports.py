"""Trade and income exports in Dagster: what their chains (built by :mod:`assets.exports.assets`, one
:class:`~assets.exports.assets.ExportAssets` each) check, and the job that requests them.

An export is asked for only the days REST no longer serves whole (``pipeline.trades.futures_tail``), so a scarce
trade or income id (5 a month per endpoint) is never spent on what ``userTrades`` or ``income`` gives for weight 5
or 30. Design: docs/design/trades.md §Trade and income exports.
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from assets.common import checks
from assets.trades.assets import INCOME_CHECKS, TRADE_CHECKS, income_rules, trade_rules

FUTURES_PREFIXES = (("usdm", "futures"), ("pm_um", "pm_um"))  # market -> asset name prefix
REQUEST_JOBS = {"trade": "trade_export_requests", "income": "income_export_requests"}  # kind -> job


def fill_table_checks(kind: str) -> tuple[Callable, tuple[checks.Check, ...]]:
    """The per-day rules and checks of a trade or income table, the same as the REST tail's."""
    return (trade_rules, TRADE_CHECKS) if kind == "trade" else (income_rules, INCOME_CHECKS)


def build_fill_export_requests_jobs(
    requests: dict[str, list[str]], partitions: dg.PartitionsDefinition
) -> list[dg.UnresolvedAssetJobDefinition]:
    """One job per kind (``requests``: kind -> its request assets), so that a trades backfill spends no income id."""
    return [
        dg.define_asset_job(
            REQUEST_JOBS[kind],
            selection=names,
            partitions_def=partitions,
            description=f"Request USDⓈ-M and PM UM {kind} exports for the days of the range older than REST's "
            "retention (90 days). Spends quota (5 ids a month per endpoint, shared with the website).",
        )
        for kind, names in requests.items()
    ]

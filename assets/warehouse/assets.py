"""The DuckDB catalog over the lake, rebuilt whenever an upstream table materializes, with its activity chart."""

import dagster as dg

from assets.common.resources import BinanceResource
from assets.warehouse.resources import CatalogResource
from pipeline.storage.schemas import TABLES
from pipeline.warehouse.chart import daily_activity_report

LAKE_TABLES = TABLES

# Eager would wait until *every* daily partition upstream exists, which never happens for a history that starts in
# the past: rebuild whenever any upstream partition was updated (or the catalog is missing), one build at a time.
REBUILD = (
    (dg.AutomationCondition.any_deps_updated() | dg.AutomationCondition.missing())
    & ~dg.AutomationCondition.in_progress()
    & ~dg.AutomationCondition.any_deps_in_progress()
)


@dg.asset(
    deps=list(LAKE_TABLES),
    group_name="warehouse",
    kinds={"duckdb"},
    automation_condition=REBUILD,
    description="$ORDERLAKE_DATA_DIR/warehouse.duckdb: views over the lake (latest version per order, every "
    "version, all markets, daily activity), built in a temp file and swapped in atomically. "
    "Open it read-only from SQL sessions and BI tools.",
)
def warehouse(
    context: dg.AssetExecutionContext, catalog: CatalogResource, binance: BinanceResource
) -> dg.MaterializeResult:
    built, refresh = catalog.build_with_assets(lambda: binance.client.futures.exchange_info())
    if refresh.problem:
        context.log.warning(f"{refresh.problem}; their amounts keep a NULL asset until a later build learns it")
    for problem in built.asset_problems:
        context.log.warning(problem)
    chart = daily_activity_report(catalog.lake.path)
    context.log.info(f"catalog {built.path}: {len(built.views)} views in {built.seconds:.2f}s")
    return dg.MaterializeResult(
        metadata={
            # first, so the asset page shows them on top: the chart is one click ([Show Markdown]), the last week's
            # figures are short enough for the UI to show inline
            "daily_activity_chart": dg.MetadataValue.md(chart.chart_markdown),
            "last_7_days": dg.MetadataValue.md(chart.summary_markdown),
            "chart_path": dg.MetadataValue.path(str(chart.path)),
            "path": dg.MetadataValue.path(str(built.path)),
            "views": built.views,
            **{f"rows_{name}": n for name, n in built.views.items() if name in (*LAKE_TABLES, "orders")},
            "build_seconds": round(built.seconds, 3),
            "symbols_without_assets": dg.MetadataValue.text(
                ", ".join(f"{m}:{s}" for m, s in built.unknown_assets) or "none"
            ),
        }
    )


warehouse_automation = dg.AutomationConditionSensorDefinition(
    "warehouse_automation",
    target=[warehouse],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Rebuilds the DuckDB catalog after any lake table materializes.",
)


warehouse_job = dg.define_asset_job(
    "warehouse_build", selection=["warehouse"], description="Rebuild the DuckDB catalog and the daily-activity chart"
)

"""The DuckDB catalog over the lake, rebuilt whenever an upstream table materializes, with its activity chart."""

import dagster as dg

from assets.warehouse.resources import CatalogResource
from pipeline.storage.schemas import TABLES
from pipeline.warehouse.chart import daily_activity_markdown

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
def warehouse(context: dg.AssetExecutionContext, catalog: CatalogResource) -> dg.MaterializeResult:
    built = catalog.build()
    chart_path, chart_md = daily_activity_markdown(catalog.lake.path)
    context.log.info(f"catalog {built.path}: {len(built.views)} views in {built.seconds:.2f}s")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(built.path)),
            "views": built.views,
            **{f"rows_{name}": n for name, n in built.views.items() if name in (*LAKE_TABLES, "orders")},
            "daily_activity": dg.MetadataValue.md(chart_md),
            "chart_path": dg.MetadataValue.path(str(chart_path)),
            "build_seconds": round(built.seconds, 3),
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

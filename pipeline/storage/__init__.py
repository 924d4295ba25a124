"""Storage: Arrow schemas of the lake's datasets, exact decimals, and the atomic Parquet partition writer.

``pipeline.storage.lake`` (paths, write/read/list partitions), ``pipeline.storage.schemas`` (each table's
``TableSpec``: key, version, sort order, partition column, write mode; ``<dataset>.from_api``),
``pipeline.storage.versions`` and ``pipeline.storage.day_writer`` (writing days as the spec says),
``pipeline.storage.decimals`` (exact decimal parsing). No Dagster here. Design: docs/design/storage.md.
"""

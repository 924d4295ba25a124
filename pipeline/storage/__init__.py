"""Storage: Arrow schemas of the lake's datasets, exact decimals, and the atomic Parquet partition writer.

``pipeline.storage.lake`` (paths, write/read/list partitions), ``pipeline.storage.schemas.<dataset>``
(``SCHEMA``, ``from_api``), ``pipeline.storage.decimals`` (exact decimal parsing). No Dagster here.
"""

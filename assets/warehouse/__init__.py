"""The DuckDB catalog over the lake and its daily-activity chart."""

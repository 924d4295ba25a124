"""``make scale-demo``: many sandbox accounts backfilled on Celery workers, Dagster on Postgres, the lake on S3."""

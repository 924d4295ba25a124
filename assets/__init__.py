"""Dagster definitions of orderlake (thin assets, checks, resources, jobs, schedules and sensors over pipeline/),
one package per source, and the ``orderlake`` command that drives them."""

"""Thin Dagster definitions over :mod:`pipeline`."""

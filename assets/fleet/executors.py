"""Where the fleet job's steps run (ORDERLAKE_EXECUTOR): the run's own processes, Celery workers or Kubernetes jobs.

The Celery broker URL is passed as an ``{"env": ...}`` reference, so its password never reaches run config or
Dagster's storage; the workers read it through Settings (:mod:`assets.fleet.celery_app`).
"""

from __future__ import annotations

import dagster as dg

from pipeline.errors import ConfigurationError
from pipeline.settings import Settings

CELERY_URL = "ORDERLAKE_CELERY_URL"


def fleet_executor(settings: Settings) -> dg.ExecutorDefinition | None:
    """The executor of ``settings.executor``; None is Dagster's default (multiprocess within the run)."""
    if settings.executor == "celery":
        if settings.celery_url is None:
            raise ConfigurationError(f"ORDERLAKE_EXECUTOR=celery needs {CELERY_URL} (the broker, e.g. redis://…)")
        try:
            from dagster_celery import celery_executor
        except ImportError:
            raise ConfigurationError(
                "ORDERLAKE_EXECUTOR=celery needs the celery extra: pip install '.[celery]'"
            ) from None
        url = {"env": CELERY_URL}
        return celery_executor.configured({"broker": url, "backend": url}, name="fleet_celery")
    if settings.executor == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError:
            raise ConfigurationError("ORDERLAKE_EXECUTOR=k8s needs the k8s extra: pip install '.[k8s]'") from None
        return k8s_job_executor
    return None

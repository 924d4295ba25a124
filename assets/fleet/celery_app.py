"""The Celery app of the fleet's workers: ``celery -A assets.fleet.celery_app worker -Q dagster``.

It is dagster-celery's own app (``dagster_celery.app``) with the broker and result backend taken from
``ORDERLAKE_CELERY_URL`` through Settings, instead of a config file written under DAGSTER_HOME with the URL (and its
password) in it. The app is built when Celery first asks for ``app``, so importing this module reads nothing.
"""

from functools import cache
from typing import Any

from pipeline.errors import ConfigurationError
from pipeline.settings import Settings


@cache
def _app() -> Any:
    from dagster_celery.config import DEFAULT_CONFIG
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_execute_job_task, create_resume_job_task, create_task

    url = Settings.from_env().celery_url
    if url is None:
        raise ConfigurationError(
            "a fleet worker needs ORDERLAKE_CELERY_URL (the broker, e.g. redis://127.0.0.1:6379/0)"
        )
    app = make_app({"broker": url.reveal(), "backend": url.reveal(), "config_source": DEFAULT_CONFIG})
    for create in (create_task, create_execute_job_task, create_resume_job_task):
        create(app)
    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        return _app()
    raise AttributeError(name)

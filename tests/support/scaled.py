"""``make test-scaled`` (``pytest -p tests.support.scaled``): the suite with every lake on the loopback S3 server
and the weight budget in the loopback PostgreSQL (deploy/services.sh).

Unit tests open no socket and stay local. Every data dir an integration or Dagster test uses gets its lake under
the test's own S3 prefix (``lakefs.location``) unless the test binds one itself, and every Settings without a
budget URL gets the PostgreSQL store. Child processes do not inherit this. Tests that look at the local lake's files
fail here by design; docs/design/scale.md §The suite on S3 and PostgreSQL says what passes.
Not in ``make test``: CI's time budget.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from pipeline.settings import Secret, Settings
from pipeline.storage import lakefs


@pytest.fixture(autouse=True)
def lake_on_s3(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.path.parent.name == "unit":
        return  # the unit rung opens no socket
    s3_service = request.getfixturevalue("s3_service")
    postgres_url = request.getfixturevalue("postgres_url")
    access = lakefs.S3Access(s3_service.endpoint, s3_service.region, Secret(s3_service.key), Secret(s3_service.secret))
    bound = lakefs.location

    def location(data_dir: str | os.PathLike[str]) -> lakefs.LakeLocation:
        where = bound(data_dir)
        if not where.is_local:
            return where
        digest = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:12]
        return lakefs.bind(data_dir, lakefs.from_url(f"{s3_service.lake_url}/{digest}", access))

    def configure(settings: Settings, data_dir: str | os.PathLike[str] | None = None) -> lakefs.LakeLocation:
        return location(settings.data_dir if data_dir is None else data_dir)

    monkeypatch.setattr(lakefs, "location", location)
    monkeypatch.setattr(lakefs, "configure", configure)
    from_env = Settings.from_env.__func__  # type: ignore[attr-defined]

    def scaled_from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        settings = from_env(cls, env)
        return settings if settings.budget_url else settings.replace(budget_url=Secret(postgres_url))

    monkeypatch.setattr(Settings, "from_env", classmethod(scaled_from_env))

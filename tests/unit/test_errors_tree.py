"""One error root: every error orderlake raises on purpose is an OrderlakeError and exactly one of transient or
permanent, so a retry loop (or a Dagster retry policy) can decide by type alone."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import assets
import pipeline
from pipeline.binance import errors
from pipeline.errors import (
    ConfigurationError,
    CredentialError,
    DataError,
    OrderlakeError,
    PermanentError,
    QuotaError,
    TransientError,
)
from pipeline.exports import errors as export_errors

ROOT = Path(__file__).resolve().parents[2]
# The root, and family roots that group errors by where they come from (their members carry the transient or
# permanent mark); none is ever raised itself.
FAMILIES = (OrderlakeError, errors.BinanceError, export_errors.ExportError, export_errors.DownloadError)
# The sandbox exchange's ApiError is the fake server's answer to a client (turned into an HTTP error body), not
# an error orderlake raises to its user.
NOT_OURS = {"pipeline.sandbox.auth.ApiError"}


def _modules() -> list[str]:
    names = []
    for package in (pipeline, assets):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):  # importing it would run the command
                names.append(info.name)
    return names


def _error_classes() -> dict[str, type[BaseException]]:
    found = {}
    for name in _modules():
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == name and not cls_name.startswith("_"):
                found[f"{name}.{cls_name}"] = cls
    return found


def test_every_public_error_class_is_an_orderlake_error_and_exactly_one_kind() -> None:
    classes = _error_classes()
    assert len(classes) > 40, "the walk found too few error classes: it is looking in the wrong place"
    for name, cls in sorted(classes.items()):
        if name in NOT_OURS:
            continue
        assert issubclass(cls, OrderlakeError), f"{name} is not an OrderlakeError"
        if cls in FAMILIES:
            assert not issubclass(cls, TransientError | PermanentError), f"{name} is a family root"
            continue
        kinds = [k.__name__ for k in (TransientError, PermanentError) if issubclass(cls, k)]
        assert len(kinds) == 1, f"{name} is {kinds or 'neither transient nor permanent'}"


def test_family_roots_are_never_raised_themselves() -> None:
    call = re.compile(r"(?<![\w.])(?:\w+\.)?(" + "|".join(f.__name__ for f in FAMILIES) + r")\(")
    for path in [*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "assets").rglob("*.py")]:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.lstrip().startswith("class ") and call.search(line):
                pytest.fail(f"{path.relative_to(ROOT)}:{lineno} raises a family root: {line.strip()}")


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (503, -1000, errors.ServerError),
        (500, None, errors.ServerError),
        (408, None, errors.ServerError),  # Binance's timeout waiting for the backend
        (400, -1008, errors.ServerError),  # overloaded, whatever the status
        (429, -1003, errors.RateLimited),
    ],
)
def test_what_may_succeed_later_is_transient(status: int, code: int | None, kind: type) -> None:
    exc = errors.from_response(http_status=status, code=code, msg="x", endpoint="/api/v3/allOrders")
    assert type(exc) is kind and isinstance(exc, TransientError) and not isinstance(exc, PermanentError)


@pytest.mark.parametrize(
    ("status", "code", "branch"),
    [
        (401, -2015, CredentialError),
        (400, -2014, CredentialError),
        (400, -1022, CredentialError),
        (400, -1121, PermanentError),
        (400, -1127, PermanentError),
        (400, -1102, PermanentError),
        (403, None, PermanentError),  # the WAF
        (418, -1003, PermanentError),  # a ban is a wait until a known time, never a retry
        (400, -9999, PermanentError),
    ],
)
def test_what_needs_a_change_is_permanent(status: int, code: int | None, branch: type) -> None:
    exc = errors.from_response(http_status=status, code=code, msg="x", endpoint="/api/v3/allOrders")
    assert isinstance(exc, branch) and not isinstance(exc, TransientError)


def test_the_branches_say_who_acts() -> None:
    assert issubclass(errors.ExportQuotaExhausted, QuotaError)
    assert issubclass(export_errors.QuotaWouldBeExceeded, QuotaError)
    assert issubclass(errors.ApiKeyRejected, CredentialError) and issubclass(errors.InvalidSignature, CredentialError)
    assert issubclass(export_errors.RawFileMismatch, DataError)
    assert issubclass(export_errors.UnsafeDownloadUrl, ConfigurationError)
    # an export create that may or may not have happened is never retried: a person settles it
    assert issubclass(errors.OutcomeUnknown, PermanentError) and issubclass(
        export_errors.ExportRequestUnknown, PermanentError
    )

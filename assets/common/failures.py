"""Which step failures Dagster may retry: transient ones only (pipeline/errors.py).

A ``RetryPolicy`` retries whatever a step raises. Wrapping a step body in :func:`transient_only` turns every
other error (a rejected key, a missing setting, a used-up quota, a bug) into a ``Failure`` that forbids retries,
so it fails at once with its own message instead of "Exceeded max_retries" a minute later.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import dagster as dg

from pipeline.errors import TransientError

F = TypeVar("F", bound=Callable[..., Any])

# The client already retries transient trouble with back-off; a step that still fails is tried once more after a
# pause. Finished days are on disk, so the retry only redoes the rest of the plan.
TRANSIENT_RETRY = dg.RetryPolicy(max_retries=1, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
_PASS_THROUGH = (TransientError, dg.Failure, dg.RetryRequested, dg.DagsterError)


def permanent_failure(exc: Exception) -> dg.Failure:
    """A Failure that Dagster does not retry, described by the error's own message (cause and fix)."""
    return dg.Failure(description=str(exc) or type(exc).__name__, allow_retries=False)


def transient_only(fn: F) -> F:
    """``fn`` (a plain or generator step body) with every non-transient error turned into a no-retry Failure."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except _PASS_THROUGH:
                raise
            except Exception as exc:
                raise permanent_failure(exc) from exc

        return generator  # type: ignore[return-value]

    @functools.wraps(fn)
    def plain(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            raise permanent_failure(exc) from exc

    return plain  # type: ignore[return-value]

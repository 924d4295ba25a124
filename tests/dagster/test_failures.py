"""Dagster retries transient errors only: a permanent one fails the step at once with its own message, and the
CLI's failure text is the root cause (never "Exceeded max_retries"); Dagster's log lines stay off the terminal."""

import dagster as dg
import pytest

from assets.cli.backfill import BackfillFailed, run_job
from assets.common.failures import transient_only
from pipeline.binance.credentials import MissingCredentials
from pipeline.errors import TransientError

NO_DELAY = dg.RetryPolicy(max_retries=2)  # the real policy waits a minute; the rule under test is the same


def _defs(error: Exception, calls: list[str], *, generator: bool = False) -> dg.Definitions:
    if generator:

        @transient_only
        def body(context: dg.AssetExecutionContext):
            calls.append(context.run_id)
            raise error
            yield dg.MaterializeResult()

    else:

        @transient_only
        def body(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
            calls.append(context.run_id)
            raise error

    asset = dg.asset(name="flaky", retry_policy=NO_DELAY)(body)
    return dg.Definitions(assets=[asset], jobs=[dg.define_asset_job("flaky_job", selection=["flaky"])])


@pytest.mark.parametrize("generator", [False, True])
def test_a_permanent_error_is_not_retried_and_names_its_cause(generator: bool, capfd) -> None:
    calls: list[str] = []
    cause = MissingCredentials("/api/v3/account needs an API key: set BINANCE_API_KEY")
    defs = _defs(cause, calls, generator=generator)
    with pytest.raises(BackfillFailed) as failed:
        run_job(defs, dg.DagsterInstance.ephemeral(), "flaky_job", tags={})
    assert len(calls) == 1  # no retry
    assert str(failed.value).endswith("step flaky: /api/v3/account needs an API key: set BINANCE_API_KEY")
    out, err = capfd.readouterr()
    assert "dagster - " not in out + err  # no Dagster log line on the terminal


def test_a_transient_error_is_retried_and_the_root_cause_reported(capfd) -> None:
    calls: list[str] = []
    defs = _defs(TransientError("/api/v3/allOrders: Binance answered HTTP 503. Try again later."), calls)
    with pytest.raises(BackfillFailed) as failed:
        run_job(defs, dg.DagsterInstance.ephemeral(), "flaky_job", tags={})
    assert len(calls) == 3  # first try and two retries
    text = str(failed.value)
    assert "max_retries" not in text
    assert text.endswith("step flaky: /api/v3/allOrders: Binance answered HTTP 503. Try again later.")
    out, err = capfd.readouterr()
    assert "dagster - " not in out + err


def test_verbose_shows_dagsters_lines(capfd) -> None:
    defs = _defs(MissingCredentials("no key"), [])
    with pytest.raises(BackfillFailed):
        run_job(defs, dg.DagsterInstance.ephemeral(), "flaky_job", tags={}, quiet=False)
    out, err = capfd.readouterr()
    assert "STEP_FAILURE" in out + err

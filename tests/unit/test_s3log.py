"""The AWS client libraries' log records carry no credential of the object store, whatever their level (s3log)."""

from __future__ import annotations

import logging

import pytest

from pipeline.storage import s3log

KEY, SECRET, TOKEN = "AKIAUNITTESTKEY01", "unit-test-secret/with+signs", "FwoGZXIvYXdzEUnitTestToken=="


def test_records_of_aws_loggers_are_redacted_and_kept_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    s3log.protect(KEY, SECRET, TOKEN)
    assert logging.getLogger("botocore").getEffectiveLevel() >= logging.INFO
    caplog.set_level("DEBUG", logger="botocore")  # lowered again by someone: still redacted
    headers = {"Authorization": f"AWS4-HMAC-SHA256 Credential={KEY}/20240101/us-east-1/s3/aws4_request, Signature=ab12"}
    logging.getLogger("botocore.endpoint").debug("Sending http request: %s", {**headers, "X-Amz-Security-Token": TOKEN})
    logging.getLogger("s3fs").warning("url ?X-Amz-Credential=OTHERKEY%2F2024&X-Amz-Signature=cd34 secret %s", SECRET)
    logging.getLogger("botocore.credentials").info("bad format %d", "x")  # a malformed call still goes through
    texts = [r.getMessage() for r in caplog.records]
    assert len(texts) == 3
    assert "Credential=<redacted>/20240101" in texts[0] and "Signature=<redacted>" in texts[0]
    assert "X-Amz-Credential=<redacted>" in texts[1] and "OTHERKEY" not in texts[1]
    assert not [t for t in texts for v in (KEY, SECRET, TOKEN, "ab12", "cd34") if v in t]


def test_other_loggers_are_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    s3log.protect(KEY)
    logging.getLogger("pipeline.somewhere").debug("Credential=%s", "visible")
    assert [r.getMessage() for r in caplog.records] == ["Credential=visible"]


def test_records_made_from_a_dict_still_work() -> None:
    s3log.protect(KEY)
    record = logging.makeLogRecord({"name": "dagster", "msg": "step %s", "args": ("one",)})
    assert record.getMessage() == "step one"

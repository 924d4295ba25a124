"""Keep the object store's credentials out of every log, at every level (issue 15's canary).

botocore (under s3fs and aiobotocore) logs each signed request at DEBUG with its Authorization header, which holds
the access key id, and a session token travels as a header or query field. :func:`protect` runs whenever orderlake
builds an S3 client with credentials: it keeps those libraries' loggers at INFO or above and, should anyone lower
them again, redacts the credentials it was given and every ``Credential=``, signature and token field in each
record they create. Design: docs/design/scale.md §Credentials and logs.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

AWS_LOGGERS = ("botocore", "aiobotocore", "boto3", "s3fs")
REDACTED = "<redacted>"
# `Credential=AKID/20260101/…` (header or query), `X-Amz-Signature=…`, `X-Amz-Security-Token=…` or
# `'X-Amz-Security-Token': b'…'` (header dict): the value up to the next separator
_FIELDS = re.compile(
    r"((?:x-amz-)?(?:credential|signature|security-token)['\"]?\s*[=:]\s*b?['\"]?)[^/&\s,'\";]+", re.IGNORECASE
)
_MIN_SECRET = 4  # shorter values would redact ordinary words

_secrets: set[str] = set()
_lock = threading.Lock()
_installed = False


def redact(text: str) -> str:
    """``text`` without any registered credential or signed-request field."""
    text = _FIELDS.sub(lambda m: m.group(1) + REDACTED, text)
    for value in sorted(_secrets, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


def _ours(name: str | None) -> bool:
    """``makeLogRecord`` builds its record nameless first and fills it in afterwards: not a logger's call."""
    return isinstance(name, str) and any(name == n or name.startswith(n + ".") for n in AWS_LOGGERS)


def _factory(previous: Any) -> Any:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _ours(record.name):
            try:
                text = record.getMessage()
            except (TypeError, ValueError, KeyError):  # a malformed call: logging reports it; keep no argument
                text = str(record.msg)
            record.msg, record.args = redact(text), ()
        return record

    return make


def protect(*values: str | None) -> None:
    """Redact ``values`` (key id, secret, token) from the AWS client libraries' logs and keep them above DEBUG."""
    global _installed
    with _lock:
        _secrets.update(v for v in values if v and len(v) >= _MIN_SECRET)
        if not _installed:
            logging.setLogRecordFactory(_factory(logging.getLogRecordFactory()))
            _installed = True
    for name in AWS_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)

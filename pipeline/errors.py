"""The one error tree of orderlake, split by what the caller should do (as ccxt splits ``ExchangeError`` and
``NetworkError``).

* :class:`TransientError`: the same call may succeed later (timeouts, 5xx, dropped connections, rate limits).
  Retry loops catch this type, and only this type.
* :class:`PermanentError`: retrying cannot help; the message names the cause and the fix. Its branches say who
  must act: the user's configuration or credentials, the data, or a quota.
"""

from __future__ import annotations


class OrderlakeError(Exception):
    """Root of every error orderlake raises on purpose."""


class TransientError(OrderlakeError):
    """May succeed if tried again later; the only kind a retry loop or a Dagster retry policy may retry."""


class PermanentError(OrderlakeError):
    """Retrying cannot help: something must change first, and the message says what."""


class ConfigurationError(PermanentError):
    """A setting is missing, malformed or contradicts another one."""


class CredentialError(PermanentError):
    """The key is missing, wrong, lacks a permission or is not allowed from this IP."""


class QuotaError(PermanentError):
    """A scarce allowance (export download ids) is used up; waiting for the next period is the fix."""


class DataError(PermanentError):
    """Input data (a file, a response) is malformed, incomplete or contradicts what is stored."""

"""Typed errors of the export chain.

Every message says what happened AND what to do, because the reader is usually a user looking at a failed
Dagster run or CLI output, and a wrong guess can cost a scarce download id. Messages never contain a
pre-signed URL's query string or any API key.
"""

from __future__ import annotations

from pipeline.errors import (
    ConfigurationError,
    DataError,
    OrderlakeError,
    PermanentError,
    QuotaError,
    TransientError,
)
from pipeline.times import fmt_ms


class ExportError(OrderlakeError):
    """Family root of everything the export chain raises on purpose; each member is also transient or permanent."""


class QuotaWouldBeExceeded(ExportError, QuotaError):
    """Refused BEFORE calling Binance: the monthly download-id quota (local count or Binance's answer) is used."""

    def __init__(
        self,
        *,
        market: str,
        kind: str,
        account: str,
        month: str,
        used: int,
        limit: int,
        needed: int,
        resets_at_ms: int,
        blocked_by_binance: bool = False,
        detail: str = "",
    ) -> None:
        self.market, self.kind, self.account, self.month = market, kind, account, month
        self.used, self.limit, self.needed = used, limit, needed
        self.resets_at_ms, self.blocked_by_binance = resets_at_ms, blocked_by_binance
        why = (
            "Binance answered that the monthly export quota is exhausted (the website's download page shares "
            "this quota, so downloads made there count too)"
            if blocked_by_binance
            else f"{used} of {limit} download ids already used, {needed} more needed"
        )
        super().__init__(
            f"Export quota for {market}/{kind} (account {account!r}) in {month} (UTC): {why}. "
            f"No request was sent to Binance. The quota resets at {fmt_ms(resets_at_ms)}. "
            "The Binance website's Futures > Order History > Export shares the same monthly quota "
            "(about 10 ids a month), so manual downloads there also reduce what is left. "
            "Narrow the date range, wait for the reset, or (only if you know the quota is larger) raise "
            f"ORDERLAKE_EXPORT_MONTHLY_LIMIT.{(' ' + detail) if detail else ''}"
        )


class ExportRequestUnknown(ExportError, PermanentError):
    """A create call timed out / got a 5xx: Binance may or may not have created a download id (quota spent?).
    Never retried: a person checks the website and settles the ledger entry."""

    def __init__(self, message: str, *, entry_id: int) -> None:
        self.entry_id = entry_id
        super().__init__(message)


class ExportRejected(ExportError, PermanentError):
    """Binance definitively rejected a create call (a 4xx answer); no id was created."""


class ExportStateError(ExportError, PermanentError):
    """The ledger entry is not in a state that allows the operation (e.g. retrieve before completed)."""


class ExportNotConfigured(ExportError, ConfigurationError):
    """No lake table or no endpoint is configured for a (market, kind)."""


class LinkExpired(ExportError, PermanentError):
    """The pre-signed link expired and Binance gave no fresh one; the data needs a new download id."""


class LinkRefreshFailed(ExportError, TransientError):
    """Re-polling a download id for a fresh link failed for a reason that may pass; the entry is unchanged."""


class DownloadError(ExportError):
    """Family root: downloading the export file failed; nothing was kept under raw/ and no quota was spent."""


class UnsafeDownloadUrl(DownloadError, ConfigurationError):
    """The URL is not https (or allowed http loopback); refused before connecting."""


class DownloadUnavailable(DownloadError, TransientError):
    """The file server could not be reached, or answered an error status other than "link expired"."""


class DownloadTooLarge(DownloadError, PermanentError):
    """The file is larger than the configured download limit."""


class TruncatedDownload(DownloadError, TransientError):
    """Fewer (or more) bytes arrived than Content-Length announced."""


class BadDownload(DownloadError, TransientError):
    """The server answered with something that is not an export file (HTML page, error XML, empty body...):
    a maintenance or WAF page that may pass, and a retry costs no quota."""


class RawFileMismatch(ExportError, DataError):
    """The immutable raw copy on disk no longer matches the SHA-256 recorded in the ledger."""

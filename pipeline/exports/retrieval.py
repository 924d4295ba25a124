"""Steps 4 and 5 of the export chain: the file is streamed once to ``raw/<market>/<downloadId>.<ext>`` and kept
immutable, then parsed into daily partitions (again after a parser fix, without the network)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline.binance import errors
from pipeline.binance.facts import EXPORT_CREATE_WEIGHT, FUTURES_REST_RETENTION_DAYS, FUTURES_WINDOW_MS
from pipeline.errors import TransientError
from pipeline.exports import ingest, links, parsing
from pipeline.exports.download import LinkExpiredByServer, download, normalise_url, sha256_file, url_where
from pipeline.exports.errors import (
    ExportError,
    ExportNotConfigured,
    ExportStateError,
    LinkExpired,
    LinkRefreshFailed,
    RawFileMismatch,
)
from pipeline.exports.ledger import ExportLedger, LedgerEntry
from pipeline.exports.outcomes import RawFile
from pipeline.exports.states import READY, LedgerState
from pipeline.storage.leftovers import sweep_stale
from pipeline.times import DAY_MS, day_of, days_between, fmt_ms
from pipeline.trades.export_ingest import fill_writer

log = logging.getLogger(__name__)

# Lake table per (market, kind); trade and income files are ingested by pipeline.trades.export_ingest.
TABLES: dict[tuple[str, str], str] = {
    ("usdm", "order"): "futures_orders",
    ("pm_um", "order"): "pm_um_orders",
    ("usdm", "trade"): "futures_trades",
    ("pm_um", "trade"): "pm_um_trades",
    ("usdm", "income"): "futures_income",
    ("pm_um", "income"): "pm_um_income",
}
RAW_EXTS = ("zip", "gz", "csv")
# Offset inference compares the export with /fapi/v1/allOrders (/papi/v1/um/allOrders): stay a minute inside its
# window and a day inside its retention, and ask for at most this many symbols (5 weight each).
REST_WINDOW_MS = FUTURES_WINDOW_MS - 60_000
REST_RETENTION_MS = (FUTURES_REST_RETENTION_DAYS - 1) * DAY_MS
MAX_INFERENCE_SYMBOLS = 10


def table_for(market: str, kind: str) -> str:
    try:
        return TABLES[(market, kind)]
    except KeyError:
        raise ExportNotConfigured(
            f"no lake table configured for {market}/{kind} exports (add it to pipeline.exports.retrieval.TABLES)"
        ) from None


class RetrievalSteps:
    """Retrieval and ingest of :class:`pipeline.exports.chain.ExportChain`, a mixin: the ledger, the client, the
    clock (``_now_ms``), the endpoints (``endpoint_for``) and the quota (``quota``) are the chain's."""

    client: Any
    ledger: ExportLedger
    data_dir: Path
    allow_http_loopback: bool
    utc_offset_minutes: int | None
    time_scale: float
    sleep: Any
    max_download_bytes: int
    max_download_seconds: float

    def raw_path(self, entry: LedgerEntry, ext: str) -> Path:
        return self.data_dir / "raw" / entry.market / f"{entry.download_id}.{ext}"

    def retrieve(self, download_id: str) -> RawFile:
        """Download the file once into raw/<market>/<id>.<ext>; afterwards always reuse that immutable copy."""
        self.sweep_leftovers()
        entry = self.ledger.by_download_id(str(download_id))
        reused = self._reuse_raw(entry)
        if reused is not None:
            return reused
        if entry.status is LedgerState.EXPIRED:
            raise LinkExpired(
                entry.error
                or f"download id {download_id}: the link expired before the file was "
                "retrieved; the range needs a new download id."
            )
        if entry.status not in READY:
            raise ExportStateError(
                f"export {entry.describe()}: no file to retrieve yet (status {entry.status}); "
                "wait until polling reports it completed."
            )
        url, expires = entry.url, entry.url_expires_at
        refreshed = False
        if not url or (expires is not None and self._now_ms() >= expires - links.EXPIRY_MARGIN_MS):
            url, expires = self._refresh_link(entry, old_url=url, server_said_expired=False)
            refreshed = True
        attempt = 0
        while True:
            try:
                got = download(
                    url,
                    tmp_dir=self.data_dir / "tmp",
                    final_path=lambda ext: self.raw_path(entry, ext),
                    allow_http_loopback=self.allow_http_loopback,
                    max_bytes=self.max_download_bytes,
                    max_seconds=self.max_download_seconds,
                )
                break
            except LinkExpiredByServer as exc:
                self.ledger.update(entry.id, self._now_ms(), "link_rejected", detail={"why": str(exc)})
                if refreshed:
                    self._expire(entry, f"the refreshed link was rejected too ({exc})")
                url, expires = self._refresh_link(entry, old_url=url, server_said_expired=True)
                refreshed = True
            except TransientError as exc:  # a cut or failed transfer: again, with backoff, while the link lives
                attempt += 1
                wait_s = links.backoff_s(attempt) * self.time_scale
                detail = {"error": str(exc), "attempt": attempt}
                self.ledger.update(entry.id, self._now_ms(), "download_failed", detail=detail)
                late = expires is not None and self._now_ms() + wait_s * 1000 >= expires - links.EXPIRY_MARGIN_MS
                if attempt >= links.DOWNLOAD_ATTEMPTS or late:
                    raise
                log.warning("download id %s: %s; attempt %d in %.1f s", download_id, exc, attempt + 1, wait_s)
                self.sleep(wait_s)
            except ExportError as exc:
                self.ledger.update(entry.id, self._now_ms(), "download_failed", detail={"error": str(exc)})
                raise
        rel = got.path.relative_to(self.data_dir).as_posix()
        status = entry.status if entry.status is LedgerState.INGESTED else LedgerState.RETRIEVED
        self.ledger.update(
            entry.id,
            self._now_ms(),
            "retrieved",
            detail={"size": got.size, "sha256": got.sha256, "path": rel, "name": got.name, "attempts": attempt + 1},
            status=status,
            raw_path=rel,
            size=got.size,
            sha256=got.sha256,
            file_name=got.name,
            content_length=got.content_length,
            retrieved_at=self._now_ms(),
            url=None,
        )
        log.info("export %s stored as %s (%d bytes, sha256 %s)", download_id, rel, got.size, got.sha256)
        return RawFile(got.path, got.size, got.sha256, reused=False)

    def sweep_leftovers(self) -> None:
        """Remove scratch files of killed processes under tmp/ (never a live process's)."""
        for path in sweep_stale(self.data_dir / "tmp"):
            log.info("removed %s, left by a process that is gone", path)

    def _reuse_raw(self, entry: LedgerEntry) -> RawFile | None:
        """The raw copy is immutable: reuse it (verified against the recorded sha256) instead of downloading."""
        if entry.raw_path:
            path = self.data_dir / entry.raw_path
            if path.exists():
                size, sha = sha256_file(path)
                if entry.sha256 and sha != entry.sha256:
                    raise RawFileMismatch(
                        f"raw export file {path} no longer matches the SHA-256 recorded for download id "
                        f"{entry.download_id} (recorded {entry.sha256}, now {sha}). It is meant to be immutable; "
                        "restore it from a backup. Nothing was downloaded."
                    )
                return RawFile(path, size, sha, reused=True)
        for ext in RAW_EXTS:  # renamed into place but the ledger update was lost (crash): the file is complete
            path = self.raw_path(entry, ext)
            if path.exists():
                size, sha = sha256_file(path)
                rel = path.relative_to(self.data_dir).as_posix()
                status = entry.status if entry.status is LedgerState.INGESTED else LedgerState.RETRIEVED
                self.ledger.update(
                    entry.id,
                    self._now_ms(),
                    "raw_adopted",
                    detail={"path": rel},
                    status=status,
                    raw_path=rel,
                    size=size,
                    sha256=sha,
                    retrieved_at=self._now_ms(),
                    url=None,
                )
                return RawFile(path, size, sha, reused=True)
        return None

    def _refresh_link(
        self, entry: LedgerEntry, *, old_url: str | None, server_said_expired: bool
    ) -> tuple[str, int | None]:
        """Re-poll …/asyn/id ONCE for a fresh link; mark the entry expired when there is none."""
        ep = self.endpoint_for(entry.market, entry.kind)
        try:
            info = self.client.export_link(ep, str(entry.download_id))
        except TransientError as exc:  # a permanent cause (a rejected key...) says what to fix itself
            raise LinkRefreshFailed(
                f"could not re-poll download id {entry.download_id} for a fresh link: {exc}; "
                "retry later (the entry is unchanged)."
            ) from exc
        now = self._now_ms()
        state = links.link_state(info, now)
        exp = state.expires_ms
        url = (info.get("url") or "").strip() or (info.get("s3Link") or "").strip()
        url = normalise_url(url) if url else ""
        self.ledger.update(
            entry.id,
            now,
            "link_refresh",
            detail={"status": info.get("status"), "where": url_where(url) if url else None, "expirationTimestamp": exp},
        )
        stale = (
            not url
            or str(info.get("status", "")).lower() != "completed"
            or state.expired
            or (server_said_expired and url == old_url)
        )
        if stale:
            self._expire(entry, "Binance gave no fresh link when re-polled")
        self.ledger.update(entry.id, now, "link_refreshed", url=url, url_where=url_where(url), url_expires_at=exp)
        return url, exp

    def _expire(self, entry: LedgerEntry, why: str) -> None:
        now = self._now_ms()
        entry = self.ledger.get(entry.id)
        ep = self.endpoint_for(entry.market, entry.kind)
        q = self.quota(ep)
        weight = EXPORT_CREATE_WEIGHT.get(ep.api, max(EXPORT_CREATE_WEIGHT.values()))
        msg = (
            f"download id {entry.download_id} ({entry.market}/{entry.kind} {entry.range_text}): the download "
            f"link expired (expirationTimestamp {fmt_ms(entry.url_expires_at)}) and {why}. The data of this "
            "range needs a NEW download id, which is never requested automatically: run the export backfill for "
            f"this range again (the entry no longer blocks it). A new id costs 1 of the {q.remaining} of {q.limit} "
            f"ids left in {q.month} for {entry.market}/{entry.kind} (the Binance website's download page shares this "
            f"quota) and {weight} request weight."
        )
        self.ledger.update(entry.id, now, "expired", status=LedgerState.EXPIRED, error=msg, url=None)
        log.error(msg)
        raise LinkExpired(msg)

    # -- 5. ingest --------------------------------------------------------------------------------------------
    def ingest(
        self,
        download_id: str,
        *,
        infer_offset: bool = True,
        proven_offset_minutes: int | None = None,
        accept_empty: bool = False,
        accept_last_line: bool = False,
    ) -> ingest.ExportIngestResult:
        """Parse the raw file, check it and merge it into its daily partitions (never downloads again if the raw
        copy exists).

        The file's one UTC offset is, best first: ``proven_offset_minutes``, proven by REST orders overlapping the
        export (``infer_offset``), the configured ``utc_offset_minutes``, the file's header label, its name's label.
        A failure or a refusal is recorded in the ledger (event ``ingest_failed``, the entry's ``error``); the raw
        file stays for a re-ingest after a fix.
        """
        raw = self.retrieve(download_id)
        entry = self.ledger.by_download_id(str(download_id))
        try:
            offset, note = proven_offset_minutes, ""
            if offset is None and infer_offset and entry.kind == "order":  # trade/income: labels or the setting
                offset, note = self._inferred_offset(entry, raw.path)
            write = ingest.write_export_partitions if entry.kind == "order" else self.fill_writer(entry)
            result = write(
                raw.path,
                data_dir=self.data_dir,
                table=table_for(entry.market, entry.kind),
                market=entry.market,
                account=entry.account,
                download_id=str(download_id),
                days=days_between(day_of(entry.start_ms), day_of(entry.end_ms)),
                utc_offset_minutes=offset,
                default_utc_offset_minutes=self.utc_offset_minutes,
                source_name=entry.file_name,
                inference_note=note,
                transfer_verified=entry.content_length is not None and entry.content_length == raw.size,
                accept_empty=accept_empty,
                accept_last_line=accept_last_line,
            )
        except Exception as exc:
            self.ledger.update(
                entry.id, self._now_ms(), "ingest_failed", detail={"error": str(exc)[:2000]}, error=str(exc)[:2000]
            )
            raise
        parts = {d.isoformat(): n for d, n in result.partitions.items()}
        self.ledger.update(
            entry.id,
            self._now_ms(),
            "ingested",
            detail={
                "rows": result.rows,
                "partitions": len(parts),
                "warnings": result.warnings[:20],
                "duplicates_dropped": result.duplicates_dropped,
                "outside_days": len(result.outside_days),
                "offset": result.offset_note,
                "accepted_empty": accept_empty,
                "accepted_last_line": accept_last_line,
            },
            status=LedgerState.INGESTED,
            rows=result.rows,
            data_lines=result.data_lines,
            parsed_rows=result.parsed_rows,
            utc_offset_minutes=result.utc_offset_minutes,
            offset_source=result.offset_source,
            partitions=parts,
            ingested_at=self._now_ms(),
            error=None,
        )
        return result

    def fill_writer(self, entry: LedgerEntry) -> Any:
        """The ingest of a trade or income file (pipeline.trades.export_ingest), with the symbols' assets."""
        return fill_writer(entry.kind, self.client, self.data_dir, self._now_ms())

    def reingest(
        self, entry_id: int, *, accept_empty: bool = False, accept_last_line: bool = False
    ) -> ingest.ExportIngestResult:
        """Parse a ledger entry's stored raw file into the lake again (after a fix, or a refused file): no network
        call, no new download id. An offset the last ingest PROVED from REST is kept as proven (REST may no longer
        reach those days); any other offset is decided again from the file and the configuration."""
        entry = self.ledger.get(entry_id)
        if entry.download_id is None or self._reuse_raw(entry) is None:
            raise ExportStateError(
                f"export {entry.describe()}: no downloaded file to re-ingest (status {entry.status}). The retrieval "
                "run (the export link sensor, or `orderlake backfill`) stores it once Binance has generated it."
            )
        proven = entry.utc_offset_minutes if entry.offset_source == "proven" else None
        return self.ingest(
            str(entry.download_id),
            infer_offset=False,
            proven_offset_minutes=proven,
            accept_empty=accept_empty,
            accept_last_line=accept_last_line,
        )

    def _inferred_offset(self, entry: LedgerEntry, path: Path) -> tuple[int | None, str]:
        """The offset proven by orders both in the export and in REST, else None and why not.

        REST keeps orders for 90 days and answers at most 7 days per call, and Portfolio Margin requires a symbol:
        so per symbol of the file with an order created in the last 7 days of the export that REST still reaches
        (read from the file itself, with a day of slack for the unknown offset), one call each for at most
        :data:`MAX_INFERENCE_SYMBOLS`; every matched order must agree.
        """
        now = self._now_ms()
        end = min(entry.end_ms, now)
        start = max(entry.start_ms, end - REST_WINDOW_MS + DAY_MS, now - REST_RETENTION_MS + DAY_MS)
        if start >= end:
            note = (
                f"no offset inference: the export's last day {day_of(entry.end_ms)} is past REST's "
                f"{FUTURES_REST_RETENTION_DAYS}-day retention"
            )
            self.ledger.update(entry.id, now, "utc_offset_not_inferred", detail={"why": note})
            return None, note
        ft = parsing.file_times(path)
        symbols = ft.symbols_between(start - DAY_MS, end + DAY_MS)
        api = self.endpoint_for(entry.market, entry.kind).api
        rest = self.client.futures if api == "futures" else self.client.papi
        calls, sample = 0, []
        for symbol in symbols[:MAX_INFERENCE_SYMBOLS]:
            try:
                sample += rest.all_orders(symbol, start_time=start - DAY_MS, end_time=end)
            except errors.BinanceError as exc:
                log.warning("download id %s: REST orders of %s (offset inference): %s", entry.download_id, symbol, exc)
                continue
            calls += 1
        reference = len(sample)
        found = parsing.infer_utc_offset(path, sample, times_of_file=ft) if sample else None
        detail = {
            "symbols": len(symbols),
            "calls": calls,
            "reference_orders": reference,
            "matched": found.matched if found else 0,
            "offset_minutes": found.offset_minutes if found else None,
        }
        self.ledger.update(entry.id, self._now_ms(), "utc_offset_inferred", detail=detail)
        if found is None:
            why = "no order of the file's last days" if symbols else "the file has no order in REST's reach"
            return None, f"no offset inference: {why} matched a REST order ({calls} call(s))"
        return found.offset_minutes, ""

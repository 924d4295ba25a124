"""A trade-history or transaction-history export file -> its table's daily partitions (UTC day of ``time``).

The order exports' ingest, for fills and income: the streaming parse with the file kind's own dialect
(:mod:`pipeline.trades.export_files`), the same refusals before anything is written (a file cut short, lines and rows
that disagree, the empty-export rules) plus one of its own: every trade or income record the lake already holds
inside the export's range must be in the file (a record never changes, so any export of the range lists it). Then
each day is merged with its stored rows: a stored row is never dropped, and a REST row (millisecond time) wins over
the export's second-precision copy of the same key.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import OrderlakeError
from pipeline.exports.ingest import ExportIngestResult, _result
from pipeline.exports.parsing import BLOCK_BYTES, DEFAULT_MAX_RATIO, DEFAULT_MAX_UNCOMPRESSED, ParseStats, parse_export
from pipeline.exports.verify import ExportRange, RefusedExport, check_parsed
from pipeline.storage import lake
from pipeline.storage.day_writer import write_days
from pipeline.storage.schemas import spec_for
from pipeline.times import day_end_ms, day_of, day_start_ms, days_between
from pipeline.trades.export_files import KINDS
from pipeline.warehouse.symbols import KnownAssets, load_known_assets, record_futures_exchange_info

log = logging.getLogger(__name__)

# the columns that identify a row, besides market (one table per market)
KEYS = {"trade": ("symbol", "trade_id"), "income": ("income_type", "tran_id", "asset")}
_ASSET_COLUMNS = (("base_asset", "base_asset"), ("quote_asset", "quote_asset"), ("pnl_asset", "margin_asset"))


def with_assets(batch: pa.RecordBatch, market: str, known: KnownAssets | None) -> pa.RecordBatch:
    """Trades with the base, quote and margin asset of their symbol (NULL when exchangeInfo never listed it)."""
    if known is None:
        return batch
    symbols = batch.column("symbol").to_pylist()
    found = [known.get(market, s) for s in symbols]
    for column, attr in _ASSET_COLUMNS:
        i = batch.schema.get_field_index(column)
        batch = batch.set_column(i, batch.schema.field(i), pa.array([getattr(a, attr) for a in found], pa.string()))
    return batch


def stored_keys(data_dir: str | os.PathLike[str], table: str, account: str, kind: str, rng: ExportRange) -> set[tuple]:
    """The keys of the rows the lake holds with a time inside ``rng``: any export of the range lists them."""
    out: set[tuple] = set()
    cols = list(KEYS[kind])
    for day in days_between(day_of(rng.start_ms), day_of(rng.end_ms)):
        stored = lake.open_partition(data_dir, table, account, day)
        if stored is None:
            continue
        rows = stored.read(columns=[*cols, "time"])
        t = pc.cast(rows["time"], pa.int64())
        inside = rows.filter(pc.and_(pc.greater_equal(t, rng.start_ms), pc.less_equal(t, rng.end_ms)))
        out.update(zip(*(inside[c].to_pylist() for c in cols), strict=True))
    return out


def write_fill_partitions(
    path: str | os.PathLike[str],
    *,
    kind: str,
    data_dir: str | os.PathLike[str],
    table: str,
    market: str,
    account: str,
    download_id: str | None,
    days: Iterable[date] | None = None,
    utc_offset_minutes: int | None = None,
    default_utc_offset_minutes: int | None = None,
    source_name: str | None = None,
    inference_note: str = "",
    known_assets: KnownAssets | None = None,
    transfer_verified: bool = False,
    accept_empty: bool = False,
    accept_last_line: bool = False,
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED,
    max_ratio: float = DEFAULT_MAX_RATIO,
    block_bytes: int = BLOCK_BYTES,
) -> ExportIngestResult:
    """Parse a ``kind`` ("trade" or "income") export, check it and MERGE it into its daily partitions.

    ``days`` are the export's range; the offset arguments are :func:`pipeline.exports.parsing.parse_export`'s. A
    refused file changes nothing.
    """
    path = Path(path)
    file_kind = KINDS[kind]
    if file_kind.markets.get(market) != table or spec_for(table).name != table:
        raise ValueError(f"market {market!r} belongs to table {file_kind.markets.get(market)!r}, not {table!r}")
    wanted = sorted(set(days)) if days is not None else []
    rng = ExportRange(day_start_ms(wanted[0]), day_end_ms(wanted[-1])) if wanted else None
    required = stored_keys(data_dir, table, account, kind, rng) if rng else set()
    stats = ParseStats()
    seen: set[tuple] = set()

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in parse_export(
            path,
            market=market,
            account=account,
            download_id=download_id,
            utc_offset_minutes=utc_offset_minutes,
            default_utc_offset_minutes=default_utc_offset_minutes,
            source_name=source_name,
            inference_note=inference_note,
            block_bytes=block_bytes,
            max_uncompressed_bytes=max_uncompressed_bytes,
            max_ratio=max_ratio,
            stats=stats,
            kind=file_kind,
        ):
            if kind == "trade":
                batch = with_assets(batch, market, known_assets)
            if required:
                seen.update(zip(*(batch.column(c).to_pylist() for c in KEYS[kind]), strict=True))
            yield batch

    def check(per_day: dict[date, int]) -> None:
        check_parsed(
            path,
            stats,
            pa.array([], pa.int64()).to_numpy(),
            {},
            transfer_verified=transfer_verified,
            accept_empty=accept_empty,
            accept_last_line=accept_last_line,
        )
        missing = sorted(required - seen, key=str)
        if missing:
            raise RefusedExport(
                f"{path}: the file lacks {len(missing)} {kind} record(s) the lake already holds inside the export's "
                f"range, which any export of it must list (e.g. {dict(zip(KEYS[kind], missing[0], strict=True))}). "
                "Nothing was written; the file stays under raw/. Check the export on the Binance website.",
                path=path,
            )

    written = write_days(batches(), data_dir=data_dir, table=table, account=account, days=wanted, before_publish=check)
    return _result(path, stats, written, rng, wanted)


def fill_writer(
    kind: str, client: Any, data_dir: str | os.PathLike[str], now_ms: int
) -> Callable[..., ExportIngestResult]:
    """:func:`write_fill_partitions` for ``kind``; for trades with the symbols' assets, recorded from one
    ``/fapi/v1/exchangeInfo`` call when it answers (else what ``state/`` already knows)."""
    known = None
    if kind == "trade":
        try:
            if client is not None:  # a re-ingest has no client: what state/ recorded is used
                record_futures_exchange_info(data_dir, client.futures.exchange_info(), now_ms)
        except OrderlakeError as exc:
            log.warning("exchangeInfo for the trades' assets failed (%s); using the recorded symbols", exc)
        known = load_known_assets(data_dir)
    return functools.partial(write_fill_partitions, kind=kind, known_assets=known)

"""``orderlake exports list|resolve|reingest``: look at and settle export ledger entries by hand, without Dagster.

``resolve`` is for entries whose create call ended with an unknown outcome (timeout / 5xx): look on the Binance
website (Futures > Order History > download history) for an export of that range; attach its download id if you
find one, otherwise release the range (it will be planned again and the attempt stops counting against the quota).
``reingest`` parses an entry's stored raw file into the lake again (after a parser fix): no network, no new
download id.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.exports.states import LedgerState
from pipeline.times import fmt_ms

if TYPE_CHECKING:
    from pipeline.exports.ledger import ExportLedger, LedgerEntry
    from pipeline.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "The export ledger by hand, without Dagster: list its entries, resolve an entry whose create call had an "
        "unknown outcome, re-ingest an entry's downloaded file after a parser fix (no network, no new download id)."
    )
    parser.add_argument("--data-dir", type=Path, help="default: ORDERLAKE_DATA_DIR")
    sub = parser.add_subparsers(dest="export_command", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="the ledger entries: id, market, range, status, download id, expiry, file")
    ls.add_argument("--status", action="append", help="only this status (repeatable)")
    rs = sub.add_parser("resolve", help="attach a download id to an unknown entry, or release its range")
    rs.add_argument("entry_id", type=int)
    rs.add_argument("--download-id", default=None, help="the id found in the website's download history")
    ri = sub.add_parser("reingest", help="parse an entry's downloaded file into the lake again (no network)")
    ri.add_argument("entry_id", type=int)
    ri.add_argument(
        "--accept-empty",
        action="store_true",
        help="a file with a header and no rows is the true empty export (check the website first); the lake's "
        "known orders of the range still refuse it",
    )
    ri.add_argument(
        "--accept-last-line",
        action="store_true",
        help="the file's unterminated last row is whole, not cut short (check its last order on the website first)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Heavy imports here, not at the top: ``orderlake`` imports this module just to build its parser."""
    from pipeline.errors import OrderlakeError
    from pipeline.exports.ledger import ExportLedger, ledger_path

    data_dir = args.data_dir or settings.data_dir
    try:
        if not ledger_path(data_dir).exists():  # looking never creates a ledger
            if args.export_command == "list":
                return _list([])
            print(
                f"orderlake exports {args.export_command}: no export ledger at {ledger_path(data_dir)}: this data dir "
                "has never requested an export (check ORDERLAKE_DATA_DIR or --data-dir)",
                file=sys.stderr,
            )
            return 2
        if args.export_command == "list":
            return _list(ExportLedger(data_dir).entries(status=args.status))
        if args.export_command == "reingest":
            accept = {"accept_empty": args.accept_empty, "accept_last_line": args.accept_last_line}
            return _reingest(data_dir, settings, args.entry_id, **accept)
        return _resolve(ExportLedger(data_dir), args.entry_id, args.download_id)
    except (OrderlakeError, OSError) as exc:
        print(f"orderlake exports {args.export_command}: {exc}", file=sys.stderr)
        return 2


def _list(entries: list[LedgerEntry]) -> int:
    from pipeline.warehouse.cli import render_table

    rows = [_row(e) for e in entries]
    names = ["id", "account", "market", "range", "status", "download id", "link expires", "file"]
    types = ["BIGINT", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "VARCHAR", "VARCHAR"]
    sys.stdout.write(render_table(names, types, rows, max_width=60))
    for e in entries:
        if e.error:
            print(f"#{e.id}: {e.error}")
    return 0


def _row(e: LedgerEntry) -> list[object]:
    market = e.market if e.kind == "order" else f"{e.market}/{e.kind}"
    expires = fmt_ms(e.url_expires_at) if e.url_expires_at else None
    return [e.id, e.account, market, e.range_text, e.status, e.download_id, expires, e.raw_path or e.file_name]


def _resolve(ledger: ExportLedger, entry_id: int, download_id: str | None) -> int:
    entry = ledger.resolve_unknown(entry_id, download_id=download_id)
    if entry.status is LedgerState.RELEASED:
        print(f"released: {entry.describe()} (the range can be requested again)")
    else:
        print(f"attached: {entry.describe()} (it will be polled at the next sensor tick / backfill)")
    return 0


def _reingest(
    data_dir: Path, settings: Settings, entry_id: int, *, accept_empty: bool = False, accept_last_line: bool = False
) -> int:
    from pipeline.exports.chain import ExportChain
    from pipeline.exports.ledger import ExportLedger

    chain = ExportChain(
        None,  # no client: a re-ingest never calls Binance
        ExportLedger(data_dir),
        data_dir=data_dir,
        account=settings.account,
        utc_offset_minutes=settings.export_utc_offset_minutes,
    )
    result = chain.reingest(entry_id, accept_empty=accept_empty, accept_last_line=accept_last_line)
    entry = chain.ledger.get(entry_id)
    print(
        f"re-ingested #{entry.id} (download id {entry.download_id}, {entry.market} {entry.range_text}) from "
        f"{entry.raw_path}: {result.rows} rows in {len(result.partitions)} partitions, UTC offset "
        f"{result.utc_offset_minutes} min; nothing downloaded, no download id spent"
    )
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0

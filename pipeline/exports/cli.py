"""``python -m pipeline.exports``: settle export ledger entries by hand (the lead may mount it in ``orderlake``).

    python -m pipeline.exports list    [--data-dir DIR] [--status unknown]
    python -m pipeline.exports resolve ENTRY_ID [--download-id ID] [--data-dir DIR]

``resolve`` is for entries whose create call ended with an unknown outcome (timeout / 5xx): look on the Binance
website (Futures > Order History > download history) for an export of that range; attach its download id if you
find one, otherwise release the range (it will be planned again and the attempt stops counting against the quota).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.exports.errors import ExportError
from pipeline.exports.ledger import ExportLedger
from pipeline.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="default: ORDERLAKE_DATA_DIR")
    sub = parser.add_subparsers(dest="export_command", required=True)
    ls = sub.add_parser("list", help="list export ledger entries")
    ls.add_argument("--status", action="append", help="filter by status (repeatable)")
    rs = sub.add_parser("resolve", help="attach a download id to an unknown entry, or release its range")
    rs.add_argument("entry_id", type=int)
    rs.add_argument("--download-id", default=None, help="the id found in the website's download history")


def run(args: argparse.Namespace, settings: Settings) -> int:
    ledger = ExportLedger(args.data_dir or settings.data_dir)
    try:
        if args.export_command == "list":
            for e in ledger.entries(status=args.status):
                print(e.describe() + (f" - {e.error}" if e.error else ""))
            return 0
        entry = ledger.resolve_unknown(args.entry_id, download_id=args.download_id)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if entry.status == "released":
        print(f"released: {entry.describe()} (the range can be requested again)")
    else:
        print(f"attached: {entry.describe()} (it will be polled at the next sensor tick / backfill)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.exports", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    return run(parser.parse_args(argv), Settings.from_env())

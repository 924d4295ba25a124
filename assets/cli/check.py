"""``orderlake check``: every Binance surface and the export quota on one screen; exit 1 on any failure."""

from __future__ import annotations

import argparse

from pipeline.preflight import SURFACES, render, run_check
from pipeline.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--surface", action="append", choices=SURFACES, help="check only this surface (repeat); default: all"
    )
    return parser


def run(args: argparse.Namespace, settings: Settings) -> int:
    probe = run_check(settings, tuple(args.surface) if args.surface else SURFACES)
    print(render(probe))
    return 1 if probe.failures else 0

"""``orderlake``: the one command line (also ``python -m pipeline``), on the Dagster side of the arrows
``cli -> assets -> pipeline``, because ``backfill`` and ``demo`` drive Dagster jobs.

Settings are read from the environment once, here. Subcommands import their implementation lazily, so that
``orderlake sql`` starts fast and ``orderlake sandbox`` does not drag Dagster in.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence

from pipeline.errors import ConfigurationError, OrderlakeError
from pipeline.settings import Settings
from pipeline.storage import lakefs


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orderlake",
        description="Keep a Binance account's complete order history in a Parquet lake, queried through DuckDB.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--verbose", action="store_true", help="show Dagster's log lines, warnings and tracebacks on the terminal"
    )
    add = functools.partial(sub.add_parser, parents=[common])

    from pipeline.sandbox import cli as sandbox_cli

    sandbox_cli.add_arguments(add("sandbox", help="run the local Binance-compatible sandbox exchange"))

    backfill = add("backfill", help="materialize a date range through Dagster, in-process")
    backfill.add_argument("--start", required=True, help="first UTC day, YYYY-MM-DD")
    backfill.add_argument("--end", required=True, help="last UTC day, YYYY-MM-DD (inclusive)")
    backfill.add_argument("--select", choices=("spot", "futures", "trades", "income", "exports", "all"), default="all")
    backfill.add_argument(
        "--no-wait",
        action="store_true",
        help="request the exports and return; the link-polling sensor finishes the chain",
    )
    backfill.add_argument("--no-probe", action="store_true", help="skip the full symbol probe")
    backfill.add_argument("--quiet", action="store_true", help="no progress bar")
    daily = add("daily", help="the daily job for one day in-process (for cron instead of the daemon)")
    daily.add_argument("--date", help="UTC day, YYYY-MM-DD (default: yesterday on Binance's clock)")
    daily.add_argument(
        "--select",
        choices=("all", "futures"),
        default="all",
        help="all: the daily job and the catalog; futures: only the USDⓈ-M and PM orders REST tail",
    )
    daily.add_argument("--quiet", action="store_true", help="no progress bar")

    from pipeline.warehouse import cli as warehouse_cli

    warehouse_cli.add_sql_arguments(add("sql", help="run SQL against the DuckDB catalog"))
    warehouse_cli.add_status_arguments(add("status", help="coverage report: what is in the lake"))
    warehouse_cli.add_schema_arguments(add("schema", help="the schema reference of every table and view"))

    from pipeline.exports import cli as exports_cli

    exports_cli.add_arguments(add("exports", help="the export ledger: list, resolve, reingest"))

    from pipeline.scale import cli as scale_cli

    scale_cli.add_arguments(add("scale-demo", help="N sandbox accounts on Celery workers (make scale-demo)"))
    from assets.cli import check

    check.add_arguments(add("check", help="is every Binance surface reachable and the key right (one screen)"))
    from assets.cli import ui

    ui.add_arguments(add("ui", help="the Dagster UI (dagster dev) that stops on Ctrl-C or SIGTERM (make ui)"))
    demo = add("demo", help="the whole pipeline on the built-in sandbox exchange (make run)")
    demo.add_argument("--spot-days", type=int, default=120, help="days to backfill (the longer of the two wins)")
    demo.add_argument("--export-days", type=int, default=365, help="days to backfill (the longer of the two wins)")
    return parser


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """``settings``: read from the environment unless given (tests build them explicitly). The last line of a
    failure is its cause and its fix; tracebacks and Dagster's own lines only with ``--verbose``."""
    args = _build_parser().parse_args(argv)
    with _terminal(args.verbose):
        try:
            return _dispatch(args, settings)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except OrderlakeError as exc:
            print(f"orderlake {args.command}: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, ConfigurationError) else 1
        except Exception as exc:
            if args.verbose:
                raise
            print(
                f"orderlake {args.command}: unexpected {type(exc).__name__}: {exc} (a bug: run it again with "
                "--verbose for the traceback and report it)",
                file=sys.stderr,
            )
            return 1


@contextlib.contextmanager
def _terminal(verbose: bool) -> Iterator[None]:
    """Without ``--verbose``, Python warnings and library log lines (Dagster's) stay off the terminal."""
    if verbose:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.ERROR)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def _dispatch(args: argparse.Namespace, settings: Settings | None) -> int:
    if args.command == "sandbox":  # the sandbox is configured by its flags only
        from pipeline.sandbox import cli as sandbox_cli

        return sandbox_cli.run(args)
    if args.command == "scale-demo":  # configures its own services, accounts and workers
        from pipeline.scale import cli as scale_cli

        return scale_cli.run(args)
    if args.command == "ui":  # dagster dev reads the environment itself
        from assets.cli import ui

        return ui.run(args)
    if args.command == "schema":  # describes the code's schemas, not a data dir
        from pipeline.warehouse import cli as warehouse_cli

        return warehouse_cli.run_schema(args)
    settings = settings or Settings.from_env()
    lakefs.configure(settings)  # ORDERLAKE_LAKE_URL: the data dir's lake on object storage
    if args.command == "sql":
        from pipeline.warehouse import cli as warehouse_cli

        return warehouse_cli.run_sql(args, settings.data_dir)
    if args.command == "status":
        from assets.cli.runs import stale_runs_section
        from pipeline.warehouse import cli as warehouse_cli

        code = warehouse_cli.run_status(args, settings)
        section = stale_runs_section(settings)
        if section:
            print("\n".join(section))
        return code
    if args.command == "exports":
        from pipeline.exports import cli as exports_cli

        return exports_cli.run(args, settings)
    if args.command == "check":
        from assets.cli import check

        return check.run(args, settings)
    if args.command == "backfill" and settings.accounts_file is not None:  # many accounts: the fleet job
        from assets.fleet import launch

        return launch.run_backfill_command(args, settings)
    if args.command == "backfill":
        from assets.cli import gate

        refused = gate.refuse(args, settings)
        if refused is not None:
            return refused
        from assets.cli import backfill

        return backfill.run_backfill_command(args, settings)
    if args.command == "daily":
        from assets.cli import daily

        return daily.run_daily_command(args, settings)
    if args.command == "demo":
        from assets.cli import demo

        return demo.run_demo(args, settings)
    raise AssertionError(f"unhandled command {args.command}")

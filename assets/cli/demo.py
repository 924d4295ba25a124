"""``make run``: the whole pipeline against the built-in sandbox exchange, with no keys and no network.

It starts the sandbox on a loopback port (durations scaled, so a futures export "takes hours" in seconds),
points every Binance URL at it, backfills spot, USDⓈ-M and PM through Dagster, builds the catalog, prints a
summary and two example queries, and stops the sandbox. Everything it writes stays apart in ``data/demo/`` (lake,
catalog, its own Dagster instance; ``demo.env`` holds its settings for ``orderlake sql`` and ``make ui``), so a
real account's backfill into ``data/`` never meets a demo row, ledger entry or run.

The sandbox account is anchored to the day of the first run (``state/sandbox_demo.json``), so a second run
serves the same account: it changes no row and spends no download id on a range already exported.
"""

import argparse
import json
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.exports.chain import ExportChain
from pipeline.exports.ledger import ExportLedger, QuotaStatus
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.server import SandboxExchange
from pipeline.settings import Secret, Settings, exported_secrets
from pipeline.storage.atomic import atomic_write
from pipeline.times import day_start_ms

if TYPE_CHECKING:
    from assets.cli.backfill import BackfillSummary

TIME_SCALE = 120.0
SPOT_HISTORY_DAYS = 120  # more than 90, so Binance's archive rule (zero-fill cancels vanish) shows up
ANCHOR_FILE = "sandbox_demo.json"
DEMO_DIR = "demo"  # under ORDERLAKE_DATA_DIR
ENV_FILE = "demo.env"
EXAMPLE_QUERIES = (  # amounts per quote asset, never added across assets (tests/unit/test_warehouse_amounts.py)
    (
        "Filled notional per month, market and quote asset",
        "SELECT strftime(day, '%Y-%m') AS month, market, quote_asset, sum(orders) AS orders, "
        "sum(filled_notional) AS filled_notional FROM daily_activity WHERE quote_asset IS NOT NULL "
        "GROUP BY ALL ORDER BY month DESC, market, quote_asset LIMIT 12",
    ),
    (
        "Largest spot fills per quote asset (exact decimals)",
        "SELECT quote_asset, symbol, order_id, side, price, executed_qty, cummulative_quote_qty AS filled "
        "FROM spot_orders WHERE status = 'FILLED' AND quote_asset IS NOT NULL "
        "QUALIFY row_number() OVER (PARTITION BY quote_asset ORDER BY cummulative_quote_qty DESC) <= 2 "
        "ORDER BY quote_asset, filled DESC",
    ),
)


def _anchor(data_dir: Path, today: date) -> int:
    """Epoch ms the sandbox's generated history ends at: the start of the first run's UTC day, kept in state/."""
    path = data_dir / "state" / ANCHOR_FILE
    if path.exists():
        return int(json.loads(path.read_text())["now_ms"])
    now_ms = day_start_ms(today)
    atomic_write(path, json.dumps({"now_ms": now_ms, "note": "the sandbox account of `make run` ends here"}))
    return now_ms


def demo_dir(settings: Settings) -> Path:
    return settings.data_dir.resolve() / DEMO_DIR


def _own_instance(settings: Settings, data_dir: Path) -> Path:
    """The demo's Dagster instance, under its data dir, with the instance settings of DAGSTER_HOME if there."""
    home = data_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    source = settings.dagster_home / "dagster.yaml" if settings.dagster_home else None
    if source is not None and source.exists() and not (home / "dagster.yaml").exists():
        atomic_write(home / "dagster.yaml", source.read_text())
    return home


def _write_env(demo: Settings) -> Path:
    """The demo's settings as shell variables: ``set -a; . data/demo/demo.env; set +a`` (``make ui`` does it)."""
    path = demo.data_dir / ENV_FILE
    values = {
        "ORDERLAKE_DATA_DIR": demo.data_dir,
        "ORDERLAKE_START_DATE": demo.start_date.isoformat(),
        "DAGSTER_HOME": demo.dagster_home,
    }
    atomic_write(path, "".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def sandbox_settings(settings: Settings, sx: SandboxExchange, data_dir: Path, start: date) -> Settings:
    """``settings`` with the demo's data dir and Dagster instance, and every Binance surface and the pacing
    pointed at ``sx``."""
    return settings.replace(
        dagster_home=_own_instance(settings, data_dir),
        api_key=Secret(sx.cfg.api_key),
        api_secret=Secret(sx.cfg.api_secret or ""),
        private_key_file=None,
        private_key_password=None,
        spot_url=sx.url,
        ws_api_url=sx.ws_url,
        futures_url=sx.url,
        papi_url=sx.url,
        data_dir=data_dir,
        start_date=start,
        allow_http_loopback=True,
        time_scale=sx.cfg.time_scale,
        export_monthly_limit=sx.cfg.export_quota,
        # Budgets of the sandbox must not mix with a real api.binance.com budget on this machine.
        budget_dir=data_dir / "state" / "sandbox-budget",
        spot_symbols=sx.truth().get("delisted", []),  # the user names delisted pairs: nothing else can find them
    )


def run_demo(args: argparse.Namespace, settings: Settings, today: date | None = None) -> int:
    """``today``: the UTC day the run backfills up to (the day before it), read once (default: the wall clock's)."""
    today = today or datetime.now(UTC).date()
    data_dir = demo_dir(settings)
    started = time.monotonic()
    cfg = SandboxConfig(time_scale=TIME_SCALE, history_days=SPOT_HISTORY_DAYS, now_ms=_anchor(data_dir, today))
    yesterday = today - timedelta(days=1)
    spot_start = yesterday - timedelta(days=args.spot_days - 1)
    export_start = yesterday - timedelta(days=args.export_days - 1)
    with SandboxExchange(cfg) as sx:
        print(f"sandbox exchange on {sx.url} (time scale {cfg.time_scale:g}x, seed {cfg.seed})")
        # one range for every table, so that `orderlake status` and `make ui` show the demo 100 % filled (days
        # before the sandbox's spot history are fetched and empty)
        start = min(spot_start, export_start)
        demo = sandbox_settings(settings, sx, data_dir, start)
        from assets.cli.backfill import BackfillFailed, backfill, instance
        from assets.definitions import build_definitions
        from pipeline import progress

        defs = build_definitions(demo)
        try:
            with exported_secrets(demo), progress.listening(progress.ProgressBar()):
                done = backfill(
                    defs,
                    instance(demo),
                    start,
                    yesterday,
                    "all",
                    wait_timeout_s=600,
                    quiet=not getattr(args, "verbose", False),
                )
        except BackfillFailed as exc:
            print(f"make run failed: {exc}", file=sys.stderr)
            return 1
        stats = sx.stats()
    for waiting in done.exports_waiting:
        print(f"still processing after the demo's wait, left to the link sensor of `make ui`: {waiting}")
    _print_summary(demo, done, stats, time.monotonic() - started)
    _print_next(_write_env(demo))
    return 0


def _print_next(env_file: Path) -> None:
    shown = os.path.relpath(env_file) if env_file.is_relative_to(Path.cwd()) else str(env_file)
    print(
        f"\nThe demo stays apart from your own account's data: its settings are in {shown}. Next:\n"
        f"  set -a; . {shown}; set +a        # the demo's data dir, start date and Dagster instance\n"
        '  .venv/bin/orderlake sql "SELECT * FROM orders LIMIT 10"\n'
        "  .venv/bin/orderlake status\n"
        "  make ui                            # shows the demo while no BINANCE_API_KEY is set"
    )


def _quotas(settings: Settings) -> list[QuotaStatus]:
    """This month's quota per export endpoint, from the ledger (the only place that knows it)."""
    data_dir = settings.data_dir
    chain = ExportChain(
        None,
        ExportLedger(data_dir),
        data_dir=data_dir,
        account=settings.account,
        monthly_limit=settings.export_monthly_limit,
    )
    return chain.status_summary().quotas


def _print_summary(settings: Settings, done: "BackfillSummary", stats: dict, seconds: float) -> None:
    from pipeline.storage.lakefs import connect_catalog
    from pipeline.warehouse.catalog import catalog_path
    from pipeline.warehouse.cli import render_table

    data_dir = settings.data_dir
    con = connect_catalog(catalog_path(data_dir))  # a lake on S3: this connection gets its credentials
    try:
        print(f"\norderlake: the sandbox account in {data_dir} ({seconds:.0f} s)")
        rows = con.execute(
            "SELECT table_name, count(*) AS partitions, sum(rows) AS rows, min(date) AS first, max(date) AS last "
            "FROM lake_files GROUP BY table_name ORDER BY table_name"
        ).fetchall()
        print(
            render_table(
                ["table", "partitions", "rows", "first", "last"], ["VARCHAR", "BIGINT", "BIGINT", "DATE", "DATE"], rows
            )
        )
        print(
            f"spot weight spent: {done.spot_weight}; trades weight: {done.trades_weight}; "
            f"futures orders REST weight: {done.futures_weight}; export download ids requested this run: "
            f"{done.exports_created}; "
            f"weight the sandbox counted per limiter: {stats.get('weight')}"
        )
        for q in _quotas(settings):
            print(f"export quota {q.market}/{q.kind} {q.month}: {q.used} used, {q.remaining} of {q.limit} left")
        for title, sql in EXAMPLE_QUERIES:
            print(f"\n-- {title}\n{sql}")
            cur = con.execute(sql)
            names = [d[0] for d in cur.description]
            types = [str(d[1]) for d in cur.description]
            print(render_table(names, types, cur.fetchall()))
    finally:
        con.close()

"""``orderlake sandbox``: run the sandbox exchange in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from pipeline.sandbox.config import DEFAULT_API_KEY, DEFAULT_API_SECRET, SandboxConfig
from pipeline.sandbox.export_dialects import DAMAGES, DIALECTS, EMPTY_FORMS, SELECTIONS
from pipeline.sandbox.fill_exports import INCOME_DIALECTS, TRADE_DIALECTS
from pipeline.sandbox.server import SandboxExchange, run_sandbox

_D = SandboxConfig()


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 = pick a free one (default)")
    parser.add_argument("--seed", type=int, default=_D.seed, help="seed of the generated account")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument(
        "--api-secret",
        default=None,
        help=f"HMAC secret (default {DEFAULT_API_SECRET!r}; none if a public key is given)",
    )
    parser.add_argument(
        "--ed25519-public-key", type=Path, metavar="FILE", help="PEM public key: the API key becomes an Ed25519 key"
    )
    parser.add_argument("--rsa-public-key", type=Path, metavar="FILE", help="PEM public key: an RSA key")
    parser.add_argument(
        "--uid", type=int, default=_D.uid, help="the account's Binance uid (a second sandbox, a second uid)"
    )
    key = parser.add_argument_group("the API key's permissions (GET /sapi/v1/account/apiRestrictions)")
    key.add_argument("--key-no-futures", action="store_true", help="no 'Enable Futures': USDⓈ-M and PM answer -2015")
    key.add_argument("--key-can-trade", action="store_true", help="'Enable Spot & Margin Trading' is on")
    key.add_argument("--key-can-withdraw", action="store_true", help="'Enable Withdrawals' is on")
    key.add_argument("--key-can-transfer", action="store_true", help="internal and universal transfer are on")
    key.add_argument(
        "--key-allowed-ip", action="append", default=[], metavar="IP", help="IP whitelist (repeat); others get -2015"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="shorten durations (rate-limit windows, bans, export processing) by this factor; the clock "
        "itself is not shifted, and export links live on it unscaled",
    )
    parser.add_argument("--truth", type=Path, metavar="PATH", help="write the ground truth JSON here at start")
    shape = parser.add_argument_group("account shape")
    shape.add_argument("--listed-symbols", type=int, default=_D.listed_symbols)
    shape.add_argument("--active-symbols", type=int, default=_D.active_symbols)
    shape.add_argument("--history-days", type=int, default=_D.history_days)
    shape.add_argument(
        "--orders-per-day", type=float, default=_D.orders_per_day, help="average spot orders per active symbol per day"
    )
    shape.add_argument("--busy-day-orders", type=int, default=_D.busy_day_orders)
    shape.add_argument("--futures-history-days", type=int, default=_D.futures_history_days)
    shape.add_argument("--no-delisted-symbol", action="store_true", help="do not generate a delisted pair")
    shape.add_argument(
        "--no-futures-late-finals",
        action="store_true",
        help="no futures order ends where REST cannot show it (zero-fill cancels after 3 days, ends after 90)",
    )
    variants = parser.add_argument_group("futures REST variants (where Binance's documents disagree or are silent)")
    variants.add_argument("--futures-window-field", choices=("time", "updateTime"), default=_D.futures_window_field)
    variants.add_argument(
        "--futures-order-id-in-window", choices=("combine", "ignore"), default=_D.futures_order_id_in_window
    )
    variants.add_argument("--futures-window-rule", choices=("less_than", "at_most"), default=_D.futures_window_rule)
    variants.add_argument("--usdm-symbol-required", action="store_true", help="refuse allOrders without symbol")
    variants.add_argument(
        "--futures-ms-times", action="store_true", help="millisecond order times (default: whole seconds)"
    )
    exports = parser.add_argument_group("exports")
    exports.add_argument("--export-quota", type=int, default=_D.export_quota, help="ids per endpoint per month")
    exports.add_argument("--export-processing-seconds", type=float, default=_D.export_processing_seconds)
    exports.add_argument("--display-utc-offset-minutes", type=int, default=_D.display_utc_offset_minutes)
    exports.add_argument(
        "--export-dialect", choices=DIALECTS, default=_D.export_dialect, help="header, values and times of the files"
    )
    exports.add_argument(
        "--export-selection",
        choices=SELECTIONS,
        default=_D.export_selection,
        help="an export lists the orders last updated (update) or created (created) in its range",
    )
    exports.add_argument(
        "--export-empty-form", choices=EMPTY_FORMS, default=_D.export_empty_form, help="what an empty export holds"
    )
    exports.add_argument("--export-trade-quota", type=int, default=_D.export_trade_quota, help="trade ids a month")
    exports.add_argument("--export-income-quota", type=int, default=_D.export_income_quota, help="income ids a month")
    exports.add_argument(
        "--export-trade-dialect", choices=TRADE_DIALECTS, default=_D.export_trade_dialect, help="trade-history files"
    )
    exports.add_argument(
        "--export-income-dialect", choices=INCOME_DIALECTS, default=_D.export_income_dialect, help="income files"
    )
    exports.add_argument(
        "--export-link-hours",
        type=float,
        default=_D.export_link_ttl_seconds / 3600,
        help="how long a download link lives on the sandbox's clock (24: Binance's pages; 168: a newer SDK)",
    )
    exports.add_argument(
        "--export-damage", choices=DAMAGES, default=_D.export_damage, help="serve every export file damaged so"
    )
    exports.add_argument(
        "--export-no-final-newline",
        dest="export_final_newline",
        action="store_false",
        help="order files end without a line break after their last row (whether Binance's do is not known)",
    )
    faults = parser.add_argument_group("fault injection (probability per request)")
    faults.add_argument("--fault-5xx", type=float, default=0.0)
    faults.add_argument("--fault-html", type=float, default=0.0)
    faults.add_argument("--fault-timeout", type=float, default=0.0)
    faults.add_argument(
        "--fault-truncate", type=float, default=0.0, help="fraction of export downloads cut short (every k-th)"
    )
    return parser


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    ed = args.ed25519_public_key.read_bytes() if args.ed25519_public_key else None
    rsa = args.rsa_public_key.read_bytes() if args.rsa_public_key else None
    secret = args.api_secret if args.api_secret is not None else (None if (ed or rsa) else DEFAULT_API_SECRET)
    return SandboxConfig(
        seed=args.seed,
        api_key=args.api_key,
        api_secret=secret,
        uid=args.uid,
        key_futures=not args.key_no_futures,
        key_trading=args.key_can_trade,
        key_withdrawals=args.key_can_withdraw,
        key_transfer=args.key_can_transfer,
        key_allowed_ips=tuple(args.key_allowed_ip),
        ed25519_public_key_pem=ed,
        rsa_public_key_pem=rsa,
        listed_symbols=args.listed_symbols,
        active_symbols=args.active_symbols,
        history_days=args.history_days,
        orders_per_day=args.orders_per_day,
        busy_day_orders=args.busy_day_orders,
        futures_history_days=args.futures_history_days,
        delisted_symbol=not args.no_delisted_symbol,
        futures_late_finals=not args.no_futures_late_finals,
        futures_window_field=args.futures_window_field,
        futures_order_id_in_window=args.futures_order_id_in_window,
        futures_window_rule=args.futures_window_rule,
        usdm_symbol_required=args.usdm_symbol_required,
        futures_time_precision_ms=1 if args.futures_ms_times else 1000,
        time_scale=args.time_scale,
        export_quota=args.export_quota,
        export_processing_seconds=args.export_processing_seconds,
        display_utc_offset_minutes=args.display_utc_offset_minutes,
        export_dialect=args.export_dialect,
        export_selection=args.export_selection,
        export_empty_form=args.export_empty_form,
        export_trade_quota=args.export_trade_quota,
        export_income_quota=args.export_income_quota,
        export_trade_dialect=args.export_trade_dialect,
        export_income_dialect=args.export_income_dialect,
        export_link_ttl_seconds=args.export_link_hours * 3600,
        export_damage=args.export_damage,
        export_final_newline=args.export_final_newline,
        fault_rate_5xx=args.fault_5xx,
        fault_rate_html=args.fault_html,
        fault_rate_timeout=args.fault_timeout,
        fault_rate_truncate=args.fault_truncate,
    )


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)

    def ready(sx: SandboxExchange) -> None:
        if args.truth:
            sx.write_truth(args.truth)
        st = sx.stats()
        print(f"sandbox exchange listening on {sx.url}  (WS API {sx.ws_url})", flush=True)
        print(
            f"  api key {cfg.api_key!r} ({cfg.key_type}); rate-limit window "
            f"{st['rate_limit_interval']['intervalNum']} {st['rate_limit_interval']['interval']}; "
            f"account generated in {st['generation_seconds']} s"
            + (f"; truth written to {args.truth}" if args.truth else ""),
            flush=True,
        )
        print("  press Ctrl-C to stop", flush=True)

    try:
        return run_sandbox(cfg, host=args.host, port=args.port, on_ready=ready, stop_event=_stop_on_signals())
    except OSError as exc:
        print(
            f"sandbox: cannot listen on {args.host}:{args.port}: {exc}. Pick another --port (0 = any free).",
            file=sys.stderr,
        )
        return 2


def _stop_on_signals() -> threading.Event | None:
    """SIGTERM and SIGINT stop the sandbox, even when its parent started it with them ignored (a background job of
    a non-interactive shell inherits SIG_IGN, and ``Popen.terminate`` then did nothing)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="orderlake sandbox"))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())

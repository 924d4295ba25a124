"""``orderlake sandbox`` options reach the sandbox configuration (the README documents each of them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from pipeline.sandbox import DEFAULT_API_SECRET
from pipeline.sandbox.cli import add_arguments, config_from_args
from pipeline.sandbox.core import Exchange


def _config(argv: list[str]):
    return config_from_args(add_arguments(argparse.ArgumentParser()).parse_args(argv))


def test_every_option_is_applied() -> None:
    cfg = _config(
        [
            "--port",
            "8765",
            "--seed",
            "42",
            "--api-key",
            "my-key",
            "--api-secret",
            "my-secret",
            "--time-scale",
            "30",
            "--listed-symbols",
            "250",
            "--active-symbols",
            "9",
            "--history-days",
            "100",
            "--orders-per-day",
            "3.5",
            "--busy-day-orders",
            "1500",
            "--futures-history-days",
            "200",
            "--no-delisted-symbol",
            "--export-quota",
            "4",
            "--export-processing-seconds",
            "60",
            "--display-utc-offset-minutes",
            "-360",
            "--export-trade-quota",
            "3",
            "--export-income-quota",
            "2",
            "--export-trade-dialect",
            "short",
            "--export-income-dialect",
            "legacy",
            "--export-no-final-newline",
            "--fault-5xx",
            "0.1",
            "--fault-html",
            "0.2",
            "--fault-timeout",
            "0.05",
            "--fault-truncate",
            "0.3",
        ]
    )
    assert (cfg.seed, cfg.api_key, cfg.api_secret, cfg.key_type) == (42, "my-key", "my-secret", "hmac")
    assert (cfg.listed_symbols, cfg.active_symbols, cfg.history_days, cfg.orders_per_day) == (250, 9, 100, 3.5)
    assert (cfg.busy_day_orders, cfg.futures_history_days, cfg.delisted_symbol) == (1500, 200, False)
    assert (cfg.time_scale, cfg.export_quota, cfg.export_processing_seconds) == (30.0, 4, 60.0)
    assert cfg.display_utc_offset_minutes == -360
    assert (cfg.export_trade_quota, cfg.export_income_quota) == (3, 2)
    assert (cfg.export_trade_dialect, cfg.export_income_dialect) == ("short", "legacy")
    assert cfg.export_final_newline is False and _config([]).export_final_newline is True
    assert (cfg.fault_rate_5xx, cfg.fault_rate_html, cfg.fault_rate_timeout, cfg.fault_rate_truncate) == (
        0.1,
        0.2,
        0.05,
        0.3,
    )
    assert "my-secret" not in repr(cfg)


def test_defaults_and_ed25519_key(tmp_path: Path) -> None:
    cfg = _config([])
    assert cfg.key_type == "hmac" and cfg.api_secret == DEFAULT_API_SECRET and cfg.time_scale == 1.0
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    pem = tmp_path / "pub.pem"
    pem.write_bytes(key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    ed = _config(
        [
            "--ed25519-public-key",
            str(pem),
            "--listed-symbols",
            "10",
            "--active-symbols",
            "2",
            "--history-days",
            "2",
            "--busy-day-orders",
            "5",
            "--futures-history-days",
            "5",
        ]
    )
    assert ed.key_type == "ed25519" and ed.api_secret is None  # a key pair has no HMAC secret
    assert Exchange(ed).verifier.key_type == "ed25519"

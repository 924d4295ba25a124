"""Configuration of the sandbox exchange (one dataclass, every knob has a realistic default)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from pipeline.binance.facts import EXPORT_LINK_LIFETIME_MS, EXPORT_MONTHLY_QUOTA, IP_BAN_MIN_MS, WEIGHT_PER_MINUTE
from pipeline.sandbox.fill_exports import INCOME_DIALECTS, TRADE_DIALECTS

DEFAULT_API_KEY = "sandbox-api-key"
DEFAULT_API_SECRET = "sandbox-api-secret"
_CHOICES = {
    "futures_window_field": ("time", "updateTime"),
    "futures_order_id_in_window": ("combine", "ignore"),
    "futures_window_rule": ("less_than", "at_most"),
    "export_trade_dialect": TRADE_DIALECTS,
    "export_income_dialect": INCOME_DIALECTS,
}


@dataclass(frozen=True)
class SandboxConfig:
    """Shape of the generated account, limits, clock scaling and fault injection.

    ``time_scale`` shortens DURATIONS only (rate-limit windows, ban durations, export processing time): signed
    ``timestamp`` values and every order time stay on the real clock. Export links are not scaled: they live on the
    sandbox's clock and expire when it is advanced past them.
    """

    seed: int = 7
    api_key: str = DEFAULT_API_KEY
    # HMAC secret. If an Ed25519 or RSA public key is configured the key is of that type instead (Binance keys have
    # exactly one type); precedence Ed25519 > RSA > HMAC.
    api_secret: str | None = DEFAULT_API_SECRET
    ed25519_public_key_pem: str | bytes | None = None
    rsa_public_key_pem: str | bytes | None = None
    uid: int = 354937868  # the account's Binance uid (GET /api/v3/account): orderlake's identity check reads it
    # the key's permissions (pipeline.sandbox.key_permissions): read-only with futures, from any IP, by default
    key_futures: bool = True
    key_trading: bool = False
    key_withdrawals: bool = False
    key_transfer: bool = False
    key_allowed_ips: tuple[str, ...] = ()  # an IP whitelist; empty: unrestricted

    # --- account shape (spot) ---
    listed_symbols: int = 300
    active_symbols: int = 12
    history_days: int = 120  # > 90, so the default account has orders that Binance's archive rule hides
    orders_per_day: float = 8.0  # average orders per active symbol per day (busy day comes on top)
    busy_day_orders: int = 2500  # one symbol gets MORE than this many orders on one UTC day
    delisted_symbol: bool = True
    hidden_active_symbols: int = 2  # active symbols whose base asset is absent from /api/v3/account balances

    # --- futures (USDⓈ-M and Portfolio Margin UM) ---
    futures_history_days: int = 400
    futures_orders_per_day: float = 6.0
    pm_orders_per_day: float = 3.0

    # UNCONFIRMED variants of the futures REST (docs/binance-facts.md §USDⓈ-M allOrders, §PM UM allOrders); the
    # client must work under each, so each is a setting:
    futures_window_field: str = "time"  # what startTime/endTime filter: creation "time" or "updateTime"
    futures_order_id_in_window: str = "combine"  # orderId with a window: "combine" (ids >= orderId in it) | "ignore"
    futures_window_rule: str = "less_than"  # span "less_than" 7 days (English pages) | "at_most" (Chinese page)
    usdm_symbol_required: bool = False  # the USDⓈ-M page says required, the 2026-08 change log optional
    futures_time_precision_ms: int = 1000  # 1000: whole seconds, as export files print them; 1: milliseconds
    # orders that end CANCELED/EXPIRED without fill more than 3 days after creation, or end after 90 days: REST never
    # shows their final state (docs/binance-facts.md §Retention)
    futures_late_finals: bool = True
    # how far back userTrades reaches (docs/binance-facts.md §Futures userTrades): 6 months in the SDK of 2026-08, 3
    # months in a later change-log entry; UNCONFIRMED, so both are served (the client plans for 90 days)
    futures_trade_retention_days: int = 90

    # the market clock at start (order histories are read at it; it moves only when advanced); default: real time
    now_ms: int | None = None
    # serverTime starts at now_ms too (tests that advance a clock set in the past, so every day stays a past day)
    server_time_at_market: bool = False

    # --- limits and clock ---
    time_scale: float = 1.0
    spot_weight_limit: int = WEIGHT_PER_MINUTE["spot"]
    futures_weight_limit: int = WEIGHT_PER_MINUTE["futures"]
    papi_weight_limit: int = WEIGHT_PER_MINUTE["papi"]
    ban_seconds: float = IP_BAN_MIN_MS / 1000  # first 418 ban (scaled), doubles per repeat offence, capped (scaled)

    # --- exports ---
    export_quota: int = EXPORT_MONTHLY_QUOTA["order"]  # per endpoint, per account, per UTC calendar month
    export_processing_seconds: float = 180.0  # scaled
    # NOT scaled (the sandbox's clock); Binance's pages say 24 h, a newer SDK 7 days: the default is the shorter
    export_link_ttl_seconds: float = EXPORT_LINK_LIFETIME_MS / 1000
    display_utc_offset_minutes: int = 480
    export_dialect: str = "api"  # pipeline.sandbox.export_dialects.DIALECTS
    export_selection: str = "update"  # rows by last update or by creation time (Binance does not say)
    export_empty_form: str = "full"  # the empty export: full header, short header or the sentinel alone
    export_damage: str = "none"  # every file damaged this way (pipeline.sandbox.export_dialects.DAMAGES)
    export_final_newline: bool = True  # a line break after the last row (unknown for Binance: both are served)
    # trade and income exports (pipeline.sandbox.fill_exports): their own quota and dialects
    export_trade_quota: int = EXPORT_MONTHLY_QUOTA["trade"]
    export_income_quota: int = EXPORT_MONTHLY_QUOTA["income"]
    export_trade_dialect: str = "current"
    export_income_dialect: str = "current"

    # --- faults (probabilities per API request; deterministic RNG from seed) ---
    fault_rate_5xx: float = 0.0
    fault_rate_html: float = 0.0
    fault_rate_timeout: float = 0.0
    fault_timeout_seconds: float = 30.0  # how long a "timeout" request hangs before the server answers 503
    fault_rate_truncate: float = 0.0  # this fraction of export downloads (every k-th, not by chance) is cut short

    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"SandboxConfig.{name} must be one of {allowed}, not {getattr(self, name)!r}")
        if self.futures_trade_retention_days not in (90, 180):
            raise ValueError("SandboxConfig.futures_trade_retention_days must be 90 or 180")
        if self.futures_time_precision_ms not in (1, 1000):
            raise ValueError("SandboxConfig.futures_time_precision_ms must be 1 or 1000")

    def with_overrides(self, **overrides: Any) -> SandboxConfig:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown SandboxConfig option(s): {', '.join(sorted(unknown))}")
        return replace(self, **overrides)

    @property
    def key_type(self) -> str:
        if self.ed25519_public_key_pem:
            return "ed25519"
        if self.rsa_public_key_pem:
            return "rsa"
        return "hmac"

    def __repr__(self) -> str:  # never show the secret
        return (
            f"SandboxConfig(seed={self.seed}, api_key={self.api_key!r}, key_type={self.key_type}, "
            f"listed_symbols={self.listed_symbols}, active_symbols={self.active_symbols}, "
            f"history_days={self.history_days}, time_scale={self.time_scale})"
        )

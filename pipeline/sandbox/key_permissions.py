"""The sandbox API key's permissions: what ``GET /sapi/v1/account/apiRestrictions`` reports and what the
exchange enforces (docs/binance-facts.md §Account and API key permissions).

A key without "Enable Futures" gets -2015 on every signed USDⓈ-M and PM endpoint; a key with an IP whitelist
gets -2015 from any other address (docs/binance-facts.md §Error codes). The flags are SandboxConfig settings so
that ``orderlake check`` and the backfill's preflight can be tested against each kind of key.
"""

from __future__ import annotations

from pipeline.sandbox.auth import REJECTED_KEY, ApiError
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.core import Endpoint

RESTRICTIONS_PATH = "/sapi/v1/account/apiRestrictions"
RESTRICTIONS_WEIGHT = 1  # "Get API Key Permission", weight 1 (docs/binance-facts.md §Account and API key permissions)
KEY_CREATED_MS = 1_700_000_000_000


def authorize(cfg: SandboxConfig, group: str, ip: str) -> None:
    """Raise -2015 if the (already verified) key may not call an endpoint of ``group`` from ``ip``."""
    if cfg.key_allowed_ips and ip not in cfg.key_allowed_ips:
        raise ApiError(*REJECTED_KEY)
    if group in ("futures", "papi") and not cfg.key_futures:
        raise ApiError(*REJECTED_KEY)


def restrictions(cfg: SandboxConfig) -> dict:
    """The key's permission flags, shaped like Binance's answer."""
    return {
        "ipRestrict": bool(cfg.key_allowed_ips),
        "createTime": KEY_CREATED_MS,
        "enableReading": True,
        "enableWithdrawals": cfg.key_withdrawals,
        "enableInternalTransfer": cfg.key_transfer,
        "enableMargin": False,
        "enableFutures": cfg.key_futures,
        "permitsUniversalTransfer": cfg.key_transfer,
        "enableVanillaOptions": False,
        "enableFixApiTrade": False,
        "enableFixReadOnly": False,
        "enableSpotAndMarginTrading": cfg.key_trading,
        "enablePortfolioMarginTrading": cfg.key_futures and cfg.key_trading,
    }


def restrictions_endpoint(cfg: SandboxConfig) -> Endpoint:
    return Endpoint(RESTRICTIONS_PATH, "spot", True, lambda p: restrictions(cfg), lambda p: RESTRICTIONS_WEIGHT, False)

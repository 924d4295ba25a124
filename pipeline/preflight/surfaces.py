"""One cheap probe per Binance surface (spot REST, spot WS API, USDⓈ-M, PM): reachable, clock offset, key
accepted, key permissions (docs/binance-facts.md §Account and API key permissions).

Each probe spends a few weight units at most, sends every request once (no retries, short timeouts) and turns
each error into a :class:`Finding` that names the cause and the fix, so that ``orderlake check`` and the
backfill's preflight fail in seconds instead of after a step's retries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.binance import BinanceClient, MissingCredentials
from pipeline.binance import errors as berr
from pipeline.binance.clock import ServerClock
from pipeline.binance.transport import RetryPolicy
from pipeline.errors import OrderlakeError
from pipeline.settings import Settings

Level = Literal["ok", "warn", "fail", "skip"]
SURFACES = ("spot REST", "spot WS API", "USDⓈ-M", "PM")
RESTRICTIONS_PATH = "/sapi/v1/account/apiRestrictions"
RESTRICTIONS_WEIGHT = 1
TIMEOUT_S = 4.0  # per request: each surface stays well under 5 s even when a host does not answer
CLOCK_WARN_MS = 1000  # Binance rejects a timestamp 1000 ms ahead of its clock (docs/binance-facts.md §Timing security)
# apiRestrictions flags that let the key do more than read (a backup needs "Enable Reading" only)
RISKY_FLAGS = {
    "enableSpotAndMarginTrading": "trade spot and margin",
    "enableMargin": "use margin",
    "enablePortfolioMarginTrading": "trade on Portfolio Margin",
    "enableVanillaOptions": "trade options",
    "enableFixApiTrade": "trade over FIX",
    "enableWithdrawals": "WITHDRAW",
    "enableInternalTransfer": "transfer between accounts",
    "permitsUniversalTransfer": "make universal transfers",
}


@dataclass(frozen=True)
class Finding:
    surface: str
    check: str
    level: Level
    text: str

    def line(self) -> str:
        return f"{self.surface}: {self.text}"


@dataclass
class Probe:
    """What the probes learned: findings in order, the account's uid and the key's permission flags."""

    findings: list[Finding] = field(default_factory=list)
    uid: int | None = None
    restrictions: dict[str, Any] | None = None

    def add(self, surface: str, check: str, level: Level, text: str) -> None:
        self.findings.append(Finding(surface, check, level, text))

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "fail"]


def check_client(settings: Settings) -> BinanceClient:
    """A client that sends each request once, with short timeouts: a check reports, it never waits."""
    return BinanceClient.from_settings(
        settings, timeout=TIMEOUT_S, retry=RetryPolicy(max_attempts=1, max_rate_limit_retries=0)
    )


def explain(exc: Exception, surface: str, restrictions: dict[str, Any] | None) -> str:
    """The cause and the fix of a failed probe, sharper than the bare error where the key's flags tell more."""
    if isinstance(exc, berr.ApiKeyRejected) and restrictions is not None:
        if surface in ("USDⓈ-M", "PM") and restrictions.get("enableFutures") is False:
            return (
                f"the API key has no futures permission (apiRestrictions: enableFutures=false), Binance answered "
                f"{exc.code}. Tick 'Enable Futures' for the key on binance.com (API Management), or back up "
                "spot only with `orderlake backfill --select spot`."
            )
        if restrictions.get("ipRestrict"):
            return (
                f"the API key was rejected ({exc.code}) and it is restricted to trusted IPs: add this machine's "
                "public IP to the key's whitelist on binance.com (API Management)."
            )
    if isinstance(exc, berr.TransportError):
        return f"not reachable: {exc} Check the network, a proxy or the BINANCE_*_URL setting."
    return str(exc)


def _attempt(
    probe: Probe, surface: str, check: str, call: Callable[[], Any], *, fail_level: Level = "fail"
) -> tuple[bool, Any]:
    try:
        return True, call()
    except MissingCredentials as exc:
        probe.add(surface, check, fail_level, str(exc))
    except OrderlakeError as exc:
        probe.add(surface, check, fail_level, explain(exc, surface, probe.restrictions))
    return False, None


def _clock(probe: Probe, surface: str, clock: ServerClock, *, fail_level: Level = "fail") -> bool:
    ok, offset = _attempt(probe, surface, "reachable", clock.sync, fail_level=fail_level)
    if not ok:
        return False
    text = f"reachable, clock offset {offset:+d} ms"
    if abs(offset) > CLOCK_WARN_MS:
        probe.add(surface, "clock", "warn", f"{text}: enable NTP (timedatectl / chronyd); orderlake corrects it")
    else:
        probe.add(surface, "clock", "ok", text)
    return True


def spot_rest(client: BinanceClient, probe: Probe) -> None:
    surface = "spot REST"
    if not _clock(probe, surface, client.clocks["spot"]):
        return
    ok, account = _attempt(probe, surface, "key", lambda: client.spot.account(omit_zero_balances=True))
    if not ok:
        return
    probe.uid = account.get("uid")
    probe.add(surface, "key", "ok", f"key accepted, account uid {probe.uid}, type {account.get('accountType')}")
    ok, flags = _attempt(
        probe,
        surface,
        "permissions",
        lambda: client.transports["spot"].call(RESTRICTIONS_PATH, weight=RESTRICTIONS_WEIGHT, signed=True),
        fail_level="warn",
    )
    if ok and isinstance(flags, dict):
        probe.restrictions = flags
        permissions(probe, flags)


def permissions(probe: Probe, flags: dict[str, Any]) -> None:
    """Warn when the key can do more than read; report its IP restriction."""
    risky = [what for name, what in RISKY_FLAGS.items() if flags.get(name)]
    if risky:
        probe.add(
            "key",
            "permissions",
            "warn",
            "the key can " + ", ".join(risky) + ": a backup needs 'Enable Reading' only; create a read-only key",
        )
    else:
        probe.add("key", "permissions", "ok", "read-only (no trading, withdrawal or transfer permission)")
    if flags.get("ipRestrict"):
        probe.add("key", "ip", "ok", "restricted to trusted IPs (this machine's IP is on the list)")
    else:
        probe.add(
            "key",
            "ip",
            "warn" if risky else "ok",
            "not IP-restricted" + ("; a key that can trade or move funds must be" if risky else ""),
        )


def spot_ws(client: BinanceClient, probe: Probe, *, used: bool) -> None:
    """The WS API is checked always, but fails the check only if BINANCE_SPOT_TRANSPORT=ws uses it."""
    surface, level = "spot WS API", ("fail" if used else "warn")
    ws = client.spot_ws
    ok, _ = _attempt(probe, surface, "reachable", ws.server_time, fail_level=level)
    if not ok:
        return
    ok, _ = _attempt(probe, surface, "key", lambda: ws.account(omit_zero_balances=True), fail_level=level)
    if ok:
        probe.add(surface, "key", "ok", "reachable, key accepted" + ("" if used else " (not used: transport rest)"))


def futures(client: BinanceClient, probe: Probe, surface: str) -> None:
    """USDⓈ-M (``/fapi``) or PM (``/papi``): the shared futures clock, then the account endpoint (a signed read)."""
    if surface == "USDⓈ-M" and not _clock(probe, surface, client.clocks["futures"]):
        return
    api = client.futures if surface == "USDⓈ-M" else client.papi
    ok, _ = _attempt(probe, surface, "key", api.account)
    if ok:
        probe.add(surface, "key", "ok", "key accepted (futures permission)")


def run_probes(settings: Settings, surfaces: tuple[str, ...] = SURFACES) -> Probe:
    probe = Probe()
    with check_client(settings) as client:
        if "spot REST" in surfaces:
            spot_rest(client, probe)
        if "spot WS API" in surfaces and not probe.failures:
            spot_ws(client, probe, used=settings.spot_transport == "ws")
        for surface in ("USDⓈ-M", "PM"):
            if surface in surfaces and not any(f.surface == "spot REST" for f in probe.failures):
                futures(client, probe, surface)
    return probe

"""Which asset each symbol's amounts are in: the base, quote and margin asset of a (market, symbol), from exchangeInfo.

Spot comes from the symbol activity index (``state/spot_symbols.json``, which records exchangeInfo's ``baseAsset``
and ``quoteAsset``); USDⓈ-M and PM UM from ``state/futures_symbols.json``, recorded from ``/fapi/v1/exchangeInfo``.
A symbol no exchangeInfo listed while we looked has no known asset: its asset columns are NULL, never guessed from
the name. Why and sources: docs/design/catalog.md §Amounts and assets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from pipeline.errors import OrderlakeError
from pipeline.storage.atomic import atomic_write

FUTURES_FILE = "futures_symbols.json"
SPOT_INDEX_FILE = "spot_symbols.json"
FUTURES_MARKETS = ("usdm", "pm_um")  # PM UM trades the USDⓈ-M symbols: one exchangeInfo serves both


@dataclass(frozen=True)
class SymbolAssets:
    market: str
    symbol: str
    base_asset: str | None
    quote_asset: str | None
    margin_asset: str | None = None


@dataclass(frozen=True)
class KnownAssets:
    """Every (market, symbol) whose assets are known, and the state files that could not be read."""

    symbols: dict[tuple[str, str], SymbolAssets]
    problems: tuple[str, ...] = ()

    def get(self, market: str, symbol: str) -> SymbolAssets:
        return self.symbols.get((market, symbol)) or SymbolAssets(market, symbol, None, None)


def _read_object(path: Path, problems: list[str]) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problems.append(f"{path.name} unreadable ({type(exc).__name__}: {exc}); its symbols' assets are NULL")
        return {}
    if not isinstance(doc, dict):
        problems.append(f"{path.name} is not a JSON object; its symbols' assets are NULL")
        return {}
    return doc


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def load_known_assets(data_dir: str | Path) -> KnownAssets:
    """The assets of every symbol recorded in ``state/`` (every account's spot index; the futures file)."""
    state = Path(data_dir) / "state"
    problems: list[str] = []
    known: dict[tuple[str, str], SymbolAssets] = {}
    accounts = _read_object(state / SPOT_INDEX_FILE, problems).get("accounts")
    for section in (accounts or {}).values() if isinstance(accounts, dict) else ():
        symbols = section.get("symbols") if isinstance(section, dict) else None
        for symbol, act in (symbols or {}).items() if isinstance(symbols, dict) else ():
            if not isinstance(act, dict):
                continue
            base, quote = _text(act.get("base_asset")), _text(act.get("quote_asset"))
            if base and quote:  # accounts agree: a spot symbol's assets never change
                known[("spot", symbol)] = SymbolAssets("spot", symbol, base, quote)
    futures = _read_object(state / FUTURES_FILE, problems).get("symbols")
    for symbol, meta in (futures or {}).items() if isinstance(futures, dict) else ():
        if not isinstance(meta, dict):
            continue
        base, quote, margin = (_text(meta.get(k)) for k in ("base_asset", "quote_asset", "margin_asset"))
        if base and quote:
            for market in FUTURES_MARKETS:
                known[(market, symbol)] = SymbolAssets(market, symbol, base, quote, margin)
    return KnownAssets(known, tuple(problems))


def record_futures_exchange_info(data_dir: str | Path, info: dict, now_ms: int) -> int:
    """Merge ``/fapi/v1/exchangeInfo``'s symbols into ``state/futures_symbols.json``; returns how many it added or
    changed. A symbol exchangeInfo no longer lists keeps its recorded assets (its old orders still need them)."""
    path = Path(data_dir) / "state" / FUTURES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.with_name(path.name + ".lock")):
        doc = _read_object(path, [])
        symbols = doc.get("symbols") if isinstance(doc.get("symbols"), dict) else {}
        changed = 0
        for entry in info.get("symbols") or []:
            if not isinstance(entry, dict) or not _text(entry.get("symbol")):
                continue
            meta = {
                "base_asset": _text(entry.get("baseAsset")),
                "quote_asset": _text(entry.get("quoteAsset")),
                "margin_asset": _text(entry.get("marginAsset")),
            }
            if meta["base_asset"] and meta["quote_asset"] and symbols.get(entry["symbol"]) != meta:
                symbols[entry["symbol"]] = meta
                changed += 1
        atomic_write(
            path, json.dumps({"version": 1, "recorded_at": now_ms, "symbols": symbols}, indent=1, sort_keys=True)
        )
    return changed


@dataclass(frozen=True)
class Refresh:
    """What :func:`refresh_futures_symbols` did: symbols recorded, those still unknown, the failure if any."""

    recorded: int = 0
    still_unknown: tuple[str, ...] = ()
    problem: str | None = None


def refresh_futures_symbols(
    data_dir: str | Path, wanted: Iterable[str], exchange_info: Callable[[], dict], now_ms: int
) -> Refresh:
    """One ``exchangeInfo`` call (weight 1, public) when a futures symbol of the lake has no recorded assets.

    A failure is reported, not raised: the catalog is still built, with NULL assets for those symbols.
    """
    known = load_known_assets(data_dir)
    missing = sorted({s for s in wanted if ("usdm", s) not in known.symbols})
    if not missing:
        return Refresh()
    try:
        recorded = record_futures_exchange_info(data_dir, exchange_info(), now_ms)
    except OrderlakeError as exc:
        return Refresh(still_unknown=tuple(missing), problem=f"futures exchangeInfo failed: {exc}")
    known = load_known_assets(data_dir)
    return Refresh(recorded, tuple(s for s in missing if ("usdm", s) not in known.symbols))

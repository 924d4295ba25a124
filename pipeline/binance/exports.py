"""Futures asynchronous history exports (orders, trades, income), generic over an endpoint description.

Weights come from :mod:`pipeline.binance.facts` (they changed 5 -> 1000 in 2026: "true when last seen").
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.binance.facts import EXPORT_CREATE_WEIGHT, EXPORT_LINK_WEIGHT


@dataclass(frozen=True)
class ExportEndpoint:
    market: str  # "usdm" | "pm_um"
    kind: str  # "order" | "trade" | "income"
    api: str  # "futures" | "papi" (which base URL / limiter group)
    create_path: str
    link_path: str
    create_weight: int
    link_weight: int


def _endpoint(market: str, kind: str) -> ExportEndpoint:
    api, prefix = ("futures", "/fapi/v1") if market == "usdm" else ("papi", "/papi/v1/um")
    path = f"{prefix}/{kind}/asyn"
    return ExportEndpoint(
        market, kind, api, path, f"{path}/id", create_weight=EXPORT_CREATE_WEIGHT[api], link_weight=EXPORT_LINK_WEIGHT
    )


# docs/binance-facts.md §Export download ids and quotas: one create and one link endpoint per (market, kind)
EXPORT_ENDPOINTS: dict[tuple[str, str], ExportEndpoint] = {
    (m, k): _endpoint(m, k) for k in ("order", "trade", "income") for m in ("usdm", "pm_um")
}

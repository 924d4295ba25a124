"""Futures asynchronous order-history exports, generic over an endpoint description.

Weights come from :mod:`pipeline.binance.facts` (they changed 5 -> 1000 in 2026: "true when last seen").
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.binance.facts import EXPORT_CREATE_WEIGHT, EXPORT_LINK_WEIGHT


@dataclass(frozen=True)
class ExportEndpoint:
    market: str  # "usdm" | "pm_um"
    kind: str  # "order" (later "trade", "income")
    api: str  # "futures" | "papi" (which base URL / limiter group)
    create_path: str
    link_path: str
    create_weight: int
    link_weight: int


EXPORT_ENDPOINTS: dict[tuple[str, str], ExportEndpoint] = {
    ("usdm", "order"): ExportEndpoint(
        "usdm",
        "order",
        "futures",
        "/fapi/v1/order/asyn",
        "/fapi/v1/order/asyn/id",
        create_weight=EXPORT_CREATE_WEIGHT["futures"],
        link_weight=EXPORT_LINK_WEIGHT,
    ),
    ("pm_um", "order"): ExportEndpoint(
        "pm_um",
        "order",
        "papi",
        "/papi/v1/um/order/asyn",
        "/papi/v1/um/order/asyn/id",
        create_weight=EXPORT_CREATE_WEIGHT["papi"],
        link_weight=EXPORT_LINK_WEIGHT,
    ),
}

"""Futures asynchronous order-history exports, generic over an endpoint description (binance-api.md §5).

Numbers are "true when last seen" (weights changed 5 -> 1000 in 2026): keep them here, in one table.
"""

from __future__ import annotations

from dataclasses import dataclass


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
        "usdm", "order", "futures", "/fapi/v1/order/asyn", "/fapi/v1/order/asyn/id", create_weight=1000, link_weight=10
    ),
    ("pm_um", "order"): ExportEndpoint(
        "pm_um",
        "order",
        "papi",
        "/papi/v1/um/order/asyn",
        "/papi/v1/um/order/asyn/id",
        create_weight=1500,
        link_weight=10,
    ),
}

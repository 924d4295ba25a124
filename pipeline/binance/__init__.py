"""Binance client for orderlake: signing, server clock, machine-wide weight budget, retries, typed errors.

    from pipeline.binance import BinanceClient, Credentials, errors
    client = BinanceClient.from_settings(settings)
    client.spot.all_orders("BTCUSDT", start_time=..., end_time=...)

No dagster imports here (pipeline/ is plain Python).
"""

from pipeline.binance import errors, exports
from pipeline.binance.client import BinanceClient
from pipeline.binance.credentials import Credentials, MissingCredentials
from pipeline.binance.exports import EXPORT_ENDPOINTS, ExportEndpoint
from pipeline.binance.futures import PapiRest, UsdmRest
from pipeline.binance.spot import SpotRest
from pipeline.binance.ws import SpotWs

__all__ = [
    "EXPORT_ENDPOINTS",
    "BinanceClient",
    "Credentials",
    "ExportEndpoint",
    "MissingCredentials",
    "PapiRest",
    "SpotRest",
    "SpotWs",
    "UsdmRest",
    "errors",
    "exports",
]

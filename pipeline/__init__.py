"""orderlake: a Binance order-history lake. Everything here works without Dagster."""

__version__ = "0.1.0"

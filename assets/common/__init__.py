"""What every source shares: the daily partitions, the Binance and lake resources, the asset-check plumbing."""

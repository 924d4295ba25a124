"""Spot: the symbol activity index, the daily order and order-list partitions, the open-orders snapshot."""

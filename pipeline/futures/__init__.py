"""USDⓈ-M and Portfolio-Margin UM orders from REST: the daily tail, symbol discovery, reconciliation."""

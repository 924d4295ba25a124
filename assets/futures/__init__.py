"""USDⓈ-M and Portfolio-Margin UM orders from REST: assets, jobs and the daily schedule."""

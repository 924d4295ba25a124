"""USDⓈ-M and Portfolio-Margin UM order-history exports: request, link, file and daily-table assets per market."""

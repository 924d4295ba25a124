"""Futures / Portfolio-Margin asynchronous history exports: ledger, planning, polling, download, ingest.

Entry points: :class:`pipeline.exports.ledger.ExportLedger` and :class:`pipeline.exports.chain.ExportChain`.
``parser.py`` (export CSV -> Arrow) is owned by the storage helper.
"""

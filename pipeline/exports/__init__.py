"""Futures / Portfolio-Margin asynchronous history exports: ledger, planning, polling, download, ingest.

Entry points: :class:`pipeline.exports.ledger.ExportLedger` and :class:`pipeline.exports.chain.ExportChain`;
``parsing/`` turns export files into Arrow batches, ``ingest.py`` writes them as daily partitions, ``checks.py``
holds the export tables' data-quality rules.
"""

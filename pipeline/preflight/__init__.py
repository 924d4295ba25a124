"""Checks before work: is each Binance surface reachable, is its clock close, does it accept the key, may the key
do more than read, and how much export quota is left. ``orderlake check`` shows them all; ``orderlake backfill``
runs the cheap ones first and stops on the first failure with one line naming its cause and fix.
"""

from pipeline.preflight.report import first_failure, render, run_check, surfaces_for
from pipeline.preflight.surfaces import SURFACES, Finding, Probe, run_probes

__all__ = ["SURFACES", "Finding", "Probe", "first_failure", "render", "run_check", "run_probes", "surfaces_for"]

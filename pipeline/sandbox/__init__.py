"""Local Binance-compatible sandbox exchange: strict, deterministic, one port for every surface.

Used as the embedded default of ``make run`` (no keys, no network) and as ground truth in tests.
"""

from pipeline.sandbox.config import DEFAULT_API_KEY, DEFAULT_API_SECRET, SandboxConfig
from pipeline.sandbox.server import SandboxExchange, run_sandbox

__all__ = ["DEFAULT_API_KEY", "DEFAULT_API_SECRET", "SandboxConfig", "SandboxExchange", "run_sandbox"]

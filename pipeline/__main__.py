"""``python -m pipeline``: the ``orderlake`` command.

The command lives on the Dagster side (``assets.cli``), and ``pipeline`` never imports ``assets``: the installed
console script is looked up by name instead.
"""

import sys
from importlib.metadata import entry_points

scripts = entry_points(group="console_scripts", name="orderlake")
if not scripts:
    sys.exit("python -m pipeline: the orderlake command is not installed; run `make install` (pip install -e .)")
sys.exit(next(iter(scripts)).load()())

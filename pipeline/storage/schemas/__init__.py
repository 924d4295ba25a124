"""Arrow schemas of the lake's datasets, one module per dataset.

Each module exposes ``TABLE``, ``SCHEMA`` (explicit Arrow types), ``KEY``, ``VERSION`` (the column that orders
versions of a key), ``DAY_COLUMN`` (partition day = its UTC date), ``SORT_BY`` and ``from_api(...)``.
``pm_um_orders`` shares the :mod:`futures_orders` module (column ``market`` tells them apart).
"""

from __future__ import annotations

import importlib
from types import ModuleType

import pyarrow as pa

# table name -> module name under pipeline.storage.schemas
MODULES: dict[str, str] = {
    "spot_orders": "spot_orders",
    "spot_order_lists": "spot_order_lists",
    "spot_open_orders": "spot_open_orders",
    "futures_orders": "futures_orders",
    "pm_um_orders": "futures_orders",
}
TABLES: tuple[str, ...] = tuple(MODULES)


def module_for(table: str) -> ModuleType:
    """The schema module of a lake table; a clear error for an unknown table name."""
    try:
        name = MODULES[table]
    except KeyError:
        raise ValueError(f"unknown lake table {table!r}; known tables: {', '.join(TABLES)}") from None
    return importlib.import_module(f"{__name__}.{name}")


def schema_for(table: str) -> pa.Schema:
    return module_for(table).SCHEMA

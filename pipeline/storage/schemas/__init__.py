"""The lake's tables: one schema module per dataset (explicit Arrow types, ``from_api``) and the registry of their
:class:`TableSpec` (key, version, sort order, partition column, write semantics).

``pm_um_orders`` shares the :mod:`futures_orders` module (column ``market`` tells them apart).
"""

from __future__ import annotations

from types import ModuleType

import pyarrow as pa

from pipeline.storage.schemas import futures_orders, spot_open_orders, spot_order_lists, spot_orders, spot_trades
from pipeline.storage.schemas.spec import TableSpec, WriteMode

_DATASETS = (spot_orders, spot_order_lists, spot_open_orders, futures_orders, spot_trades)
SPECS: dict[str, TableSpec] = {spec.name: spec for module in _DATASETS for spec in module.SPECS}
TABLES: tuple[str, ...] = tuple(SPECS)
_MODULES: dict[str, ModuleType] = {spec.name: module for module in _DATASETS for spec in module.SPECS}

__all__ = ["SPECS", "TABLES", "TableSpec", "WriteMode", "module_for", "schema_for", "spec_for"]


def spec_for(table: str | TableSpec) -> TableSpec:
    """A lake table's spec (a spec is returned as it is); a clear error for an unknown table name."""
    if isinstance(table, TableSpec):
        return table
    try:
        return SPECS[table]
    except KeyError:
        raise ValueError(f"unknown lake table {table!r}; known tables: {', '.join(TABLES)}") from None


def module_for(table: str) -> ModuleType:
    """The schema module of a lake table (its ``from_api``)."""
    return _MODULES[spec_for(table).name]


def schema_for(table: str | TableSpec) -> pa.Schema:
    return spec_for(table).schema

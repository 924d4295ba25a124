"""A lake table declared once: its schema, key, version column, sort order, partition column and write semantics.

Every writer and the catalog read a table's :class:`TableSpec` (``pipeline.storage.schemas.spec_for``) instead of
constants of their own, so what identifies a row and what writing a day does cannot drift apart between them. Why:
docs/design/storage.md §Table specs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import pyarrow as pa

WriteMode = Literal["merge-versions", "snapshot"]
WRITE_MODES: tuple[str, ...] = get_args(WriteMode)


@dataclass(frozen=True)
class TableSpec:
    """One lake table (dlt style: a table names its key and its write disposition).

    ``key``: the columns that name one thing (an order; an open order within one snapshot). ``version``: the column
    whose greater value is the newer row of a key. ``partition_by``: the column whose UTC date is a row's partition
    day. ``sort_by``: row order within a partition file. ``write``: what writing a day does:

    * ``merge-versions``: merge the new rows with the stored day, newest version per key, stored keys kept: a day
      never shrinks;
    * ``snapshot``: the newest snapshot replaces the day (an empty snapshot is an answer: nothing was open).
    """

    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    version: str
    sort_by: tuple[str, ...]
    partition_by: str
    write: WriteMode

    def __post_init__(self) -> None:
        names = set(self.schema.names)
        missing = [c for c in (*self.key, self.version, *self.sort_by, self.partition_by) if c not in names]
        if missing:
            raise ValueError(f"table spec {self.name}: columns not in its schema: {', '.join(dict.fromkeys(missing))}")
        nullable = [c for c in (*self.key, self.version, self.partition_by) if self.schema.field(c).nullable]
        if nullable:
            raise ValueError(
                f"table spec {self.name}: key, version and partition columns must be non-nullable: {nullable}"
            )
        if not self.key:
            raise ValueError(f"table spec {self.name}: a key needs at least one column")
        if not pa.types.is_timestamp(self.schema.field(self.partition_by).type):
            raise ValueError(f"table spec {self.name}: partition_by {self.partition_by!r} must be a timestamp column")
        if self.write not in WRITE_MODES:
            raise ValueError(f"table spec {self.name}: write {self.write!r} is not one of {', '.join(WRITE_MODES)}")

"""Plain (Core) statements for ORM models, where the ORM's own layer would cost more than the
statement: the hot paths of a run write rows whose values the caller already holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper

from assistantd.db.base import Base


def table_of(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def column_values(model: type[Base], values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` keyed by attribute name (`metadata_`) as values keyed by column (`metadata`)."""
    mapper: Mapper[Any] = sa_inspect(model)
    return {mapper.attrs[key].columns[0].name: value for key, value in values.items()}


def row_values(row: Base) -> dict[str, Any]:
    """Every column of a new ORM object, by column name, for a Core INSERT."""
    mapper: Mapper[Any] = sa_inspect(type(row))
    return {attr.columns[0].name: getattr(row, attr.key) for attr in mapper.column_attrs}


def clone(row: Base, **changes: Any) -> Base:
    """A new, unattached ORM object with `row`'s column values and `changes`."""
    mapper: Mapper[Any] = sa_inspect(type(row))
    values = {attr.key: getattr(row, attr.key) for attr in mapper.column_attrs}
    return type(row)(**{**values, **changes})

"""Plain (Core) statements for ORM models, where the ORM's own layer would cost more than the
statement: the hot paths of a run write rows whose values the caller already holds.

Hot statements are built once, with bound parameters, rather than per call: building a SELECT
and deriving its cache key cost more than SQLite takes to run it (a thread by id: 120 us through
`session.get`, 70 us through a statement built once).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from sqlalchemy import Insert, Select, Table, Update, bindparam, insert, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper

from assistantd.db.base import Base

M = TypeVar("M", bound=Base)


def is_transient(exc: BaseException) -> bool:
    """A database error that says nothing about the request: the connection or the server
    (a restart, a dropped connection), worth trying again."""
    return isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    )


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
    """A new, unattached ORM object with `row`'s column values and `changes`. Built the way
    the ORM builds a row it loads, values straight into the new object's state: the
    constructor's event per attribute made it three times slower (a run is cloned on every
    creation a worker takes)."""
    mapper: Mapper[Any] = sa_inspect(type(row))
    unknown = changes.keys() - mapper.column_attrs.keys()
    if unknown:
        raise TypeError(f"{type(row).__name__} has no column attribute {sorted(unknown)}")
    new = mapper.class_manager.new_instance()
    values = new.__dict__
    for attr in mapper.column_attrs:
        values[attr.key] = getattr(row, attr.key)
    values.update(changes)
    return cast(Base, new)


@functools.cache
def _by_id(model: type[Base], refresh: bool) -> Select[Any]:
    query = select(model).where(table_of(model).c.id == bindparam("row_id"))
    return query.execution_options(populate_existing=True) if refresh else query


async def get_row(
    session: AsyncSession, model: type[M], row_id: str, *, refresh: bool = False
) -> M | None:
    """The row of `model` with id `row_id`, like `session.get` at half its cost; `refresh`
    reloads an object the session already holds."""
    return cast(M | None, await session.scalar(_by_id(model, refresh), {"row_id": row_id}))


@functools.cache
def insert_into(table: Table) -> Insert:
    """A plain INSERT into `table`, built once; execute it with a list of rows."""
    return insert(table)


def set_parameters(values: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """`values` (by column) as the shape of an UPDATE built once per set of columns (the
    statement's cache key) and its parameters, for `set_clause`."""
    columns = tuple(sorted(values))
    return columns, {f"set_{column}": values[column] for column in columns}


def set_clause(columns: tuple[str, ...]) -> dict[str, Any]:
    """The SET of an UPDATE of `columns`, as bound parameters (see `set_parameters`)."""
    return {column: bindparam(f"set_{column}") for column in columns}


@functools.cache
def _update_by_id(table: Table, columns: tuple[str, ...]) -> Update:
    return update(table).where(table.c.id == bindparam("row_id")).values(set_clause(columns))


async def update_by_id(
    session: AsyncSession, table: Table, row_id: str, values: Mapping[str, Any]
) -> None:
    """UPDATE one row of `table` by id, `values` by column name; the statement is built once
    per set of columns (building it and its cache key costs more than running it)."""
    columns, params = set_parameters(values)
    await session.execute(_update_by_id(table, columns), {"row_id": row_id, **params})

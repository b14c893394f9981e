"""Engine and session factory, created by the app's lifespan or the worker, never at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from assistantd.db.sqlite_driver import InlineSQLite, driver_connection
from assistantd.kit.text import has_bad_char, scrub, scrub_json
from assistantd.settings import Settings


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # We emit BEGIN ourselves (see _sqlite_begin), so the driver must not.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # Writers take the write lock up front: a deferred transaction that reads and then writes
    # fails with SQLITE_BUSY instead of waiting when another writer got there first.
    # Straight to the DBAPI cursor: this runs for every transaction, and SQLAlchemy's own
    # statement path would cost more than the statement.
    mode = conn.get_execution_options().get(WRITE_OPTION) and "IMMEDIATE" or "DEFERRED"
    cursor = conn.connection.cursor()
    try:
        cursor.execute(f"BEGIN {mode}")
    finally:
        cursor.close()


WRITE_OPTION = "assistantd_write"


def _scrub_params(
    _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool
) -> tuple[str, Any]:
    """The storage side of the text rule (`kit.text`): requests with NUL or unpaired surrogates
    are refused, but model and tool output (a cell printing `chr(0)`) is stored scrubbed, on
    both databases. JSON columns are scrubbed by their serializer, `scrub_json`."""
    rows = parameters if executemany else (parameters,)
    if any(_needs_scrub(row) for row in rows):
        scrubbed = [_scrub_row(row) for row in rows]
        parameters = scrubbed if executemany else scrubbed[0]
    return statement, parameters


def _values(row: Any) -> Any:
    return row.values() if isinstance(row, dict) else row or ()


def _needs_scrub(row: Any) -> bool:
    return any(isinstance(v, str) and has_bad_char(v) for v in _values(row))


def _scrub_row(row: Any) -> Any:
    if isinstance(row, dict):
        return {k: scrub(v) if isinstance(v, str) else v for k, v in row.items()}
    kind = type(row)
    return kind(scrub(v) if isinstance(v, str) else v for v in row)


def _guard_text(engine: AsyncEngine) -> AsyncEngine:
    event.listen(engine.sync_engine, "before_cursor_execute", _scrub_params, retval=True)
    return engine


def make_engine(settings: Settings, *, pool: tuple[int, int] | None = None) -> AsyncEngine:
    """The process's engine; `pool` (size, overflow) for a small one of its own beside it."""
    url = settings.effective_database_url
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            module=InlineSQLite(),
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            json_serializer=scrub_json,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return _guard_text(engine)
    # No pre-ping: it is a round trip per checkout, several per run. A connection the server
    # dropped (a PostgreSQL restart) fails its next statement once and is discarded with the
    # rest of the pool (SQLAlchemy invalidates the pool on a disconnect error).
    size, overflow = pool or (settings.db_pool_size, settings.db_max_overflow)
    engine = create_async_engine(
        url, pool_size=size, max_overflow=overflow, json_serializer=scrub_json
    )
    return _guard_text(engine)


def make_sessionmaker(
    engine: AsyncEngine, *, write: bool, autocommit: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions for reading, or for writing (which on SQLite begin IMMEDIATE).

    `autocommit` reading sessions (PostgreSQL; no difference on SQLite) make each statement its
    own transaction, which is what a read under READ COMMITTED gets anyway, without the BEGIN
    and ROLLBACK round trips around it (two of a poll's three). For reads that need no
    transaction of their own: not for transaction-scoped settings (`set_config(..., true)`).
    """
    if write:
        bind = engine.execution_options(**{WRITE_OPTION: True})
    elif autocommit and engine.dialect.name == "postgresql":
        bind = engine.execution_options(isolation_level="AUTOCOMMIT")
    else:
        bind = engine
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=False)


def sync_url(settings: Settings) -> str:
    """The URL Alembic uses (a synchronous driver for the same database)."""
    return settings.effective_database_url.replace("sqlite+aiosqlite", "sqlite")


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


@asynccontextmanager
async def offloaded(session: AsyncSession) -> AsyncIterator[None]:
    """SQLite: run the block's statements on a thread, for scans too long for the event loop
    (see sqlite_driver). A no-op on PostgreSQL, whose driver never blocks the loop."""
    if is_postgres(session):
        yield
        return
    connection = await session.connection()
    driver = driver_connection(await connection.get_raw_connection())
    if driver is None:
        yield
        return
    driver.offload += 1
    try:
        yield
    finally:
        driver.offload -= 1

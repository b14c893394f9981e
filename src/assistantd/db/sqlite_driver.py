"""SQLite for the async engine, run on the event loop's own thread.

aiosqlite runs every statement on a helper thread and hands the result back through the loop:
about 0.4 ms of CPU per statement on a 2-core machine, ten times the statement itself, and its
threads fight the loop for the GIL. A primary-key read or a small write on a local SQLite file in
WAL mode takes tens of microseconds, so this driver runs the `sqlite3` calls inline, keeping
SQLAlchemy's asyncio API (it plugs into the aiosqlite dialect as its DBAPI module). Nothing may
block the loop for long, which these rules ensure:

- Readers never wait in WAL mode.
- Writers (`BEGIN IMMEDIATE`, see `engine._sqlite_begin`) queue on an asyncio lock per database
  in this process, so two of our own transactions never meet SQLite's lock.
- Against other processes (the CLI, a second server) `busy_timeout` is 0 and a busy database is
  awaited with `asyncio.sleep` and retried, up to `BUSY_WAIT` seconds.
- WAL checkpoints (an fsync) run on a thread every `CHECKPOINT_EVERY` write transactions instead
  of inside a commit.
- Scans that can take long (file search over a large store, bulk chunk writes) run on a thread:
  `engine.offloaded(session)`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
)

BUSY_WAIT = 30.0
CHECKPOINT_EVERY = 256
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_BUSY_SNAPSHOT = 517  # a stale read snapshot cannot become a write; retrying cannot help

T = TypeVar("T")


def _is_busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        return "database is locked" in str(error)
    return code != _SQLITE_BUSY_SNAPSHOT and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)


class _Database:
    """What the connections of one database file in one event loop share."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.writer = asyncio.Lock()
        self.commits = 0
        self.checkpointing = False

    def committed(self) -> None:
        self.commits += 1
        if self.commits % CHECKPOINT_EVERY == 0 and not self.checkpointing:
            self.checkpointing = True
            loop = asyncio.get_running_loop()
            loop.run_in_executor(None, self._checkpoint).add_done_callback(self._checkpointed)

    def _checkpoint(self) -> None:
        connection = sqlite3.connect(self.path, timeout=BUSY_WAIT)
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            connection.close()

    def _checkpointed(self, future: asyncio.Future[None]) -> None:
        self.checkpointing = False
        if not future.cancelled():
            future.exception()  # a failed checkpoint is retried by the next one


_databases: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Database]] = (
    weakref.WeakKeyDictionary()
)
_databases_lock = threading.Lock()


def _database(path: str) -> _Database:
    loop = asyncio.get_running_loop()
    with _databases_lock:
        per_loop = _databases.setdefault(loop, {})
        if path not in per_loop:
            per_loop[path] = _Database(path)
        return per_loop[path]


class _Cursor:
    """The aiosqlite cursor surface SQLAlchemy's adapter uses, over a `sqlite3.Cursor`."""

    arraysize = 1

    def __init__(self, connection: _Connection, cursor: sqlite3.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor

    async def __aenter__(self) -> _Cursor:
        return self

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    async def execute(self, operation: str, parameters: Sequence[Any] = ()) -> _Cursor:
        if operation == "BEGIN IMMEDIATE":
            await self._connection.take_writer()
        await self._connection.call(self._cursor.execute, operation, parameters)
        return self

    async def executemany(self, operation: str, parameters: Sequence[Sequence[Any]]) -> _Cursor:
        await self._connection.call(self._cursor.executemany, operation, parameters)
        return self

    async def fetchall(self) -> list[Any]:
        return await self._connection.call(self._cursor.fetchall)

    async def fetchone(self) -> Any:
        return await self._connection.call(self._cursor.fetchone)

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return await self._connection.call(self._cursor.fetchmany, size or self.arraysize)

    async def close(self) -> None:
        self._cursor.close()


class _Connection:
    """The aiosqlite connection surface SQLAlchemy's adapter uses, over a `sqlite3.Connection`."""

    def __init__(self, connection: sqlite3.Connection, database: _Database) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection  # the adapter checks it
        self._database = database
        self._writing = False
        self.offload = 0

    def cursor(self) -> _Cursor:
        return _Cursor(self, self._conn.cursor())

    async def take_writer(self) -> None:
        if not self._writing:
            try:
                async with asyncio.timeout(BUSY_WAIT):
                    await self._database.writer.acquire()
            except TimeoutError:
                raise sqlite3.OperationalError("database is locked") from None
            self._writing = True

    def _release_writer(self, *, committed: bool) -> None:
        if self._writing:
            self._writing = False
            self._database.writer.release()
            if committed:
                self._database.committed()

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """One sqlite3 call: inline (on a thread when offloaded), awaiting a busy database."""
        deadline = time.monotonic() + BUSY_WAIT
        delay = 0.001
        while True:
            try:
                if self.offload:
                    return await asyncio.to_thread(function, *args)
                return function(*args)
            except sqlite3.OperationalError as error:
                if not _is_busy(error) or time.monotonic() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def commit(self) -> None:
        try:
            await self.call(self._conn.commit)
        finally:
            self._release_writer(committed=True)

    async def rollback(self) -> None:
        try:
            self._conn.rollback()
        finally:
            self._release_writer(committed=False)

    async def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._connection = None
            self._release_writer(committed=False)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)


class _AdaptedConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    @property
    def isolation_level(self) -> str | None:
        return self._connection._conn.isolation_level  # type: ignore[no-any-return]

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection._conn.isolation_level = value


class InlineSQLite(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module to pass as `module=` to `create_async_engine` for `sqlite+aiosqlite`."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)
        self.has_stop = False

    def connect(self, *args: Any, **kwargs: Any) -> _AdaptedConnection:
        kwargs.pop("async_creator_fn", None)
        kwargs["check_same_thread"] = False  # offloaded statements run on another thread
        kwargs["timeout"] = 0  # busy waits are awaited in _Connection.call, never on the loop
        path = str(args[0] if args else kwargs["database"])
        connection = _Connection(sqlite3.connect(*args, **kwargs), _database(path))
        return _AdaptedConnection(self, cast(Any, connection))  # duck-typed aiosqlite surface


def driver_connection(raw: Any) -> _Connection | None:
    """Our connection behind a pooled DBAPI connection, if it is one of ours."""
    connection = getattr(raw, "driver_connection", None)
    return connection if isinstance(connection, _Connection) else None

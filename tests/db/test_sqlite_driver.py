"""The inline SQLite driver: writers queue instead of failing, a database another process
locks is awaited without blocking the event loop, offloaded statements leave the loop's thread.
These are unit tests of the driver with a real SQLite file (no server)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from assistantd.db.engine import make_engine, make_sessionmaker, offloaded
from assistantd.db.sqlite_driver import driver_connection
from assistantd.settings import Settings


@pytest.fixture
async def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(Settings(data_dir=tmp_path, database_url=None))
    async with make_sessionmaker(engine, write=True)() as session:
        await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        await session.commit()
    yield engine
    await engine.dispose()


async def test_concurrent_writers_queue_and_all_commit(engine) -> None:  # type: ignore[no-untyped-def]
    writes = make_sessionmaker(engine, write=True)

    async def writer(n: int) -> None:
        for i in range(20):
            async with writes() as session:
                await session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"{n}-{i}"})
                await asyncio.sleep(0)  # hold the transaction across a switch
                await session.commit()

    await asyncio.gather(*(writer(n) for n in range(8)))
    async with make_sessionmaker(engine, write=False)() as session:
        assert await session.scalar(text("SELECT count(*) FROM t")) == 160


async def test_a_database_locked_by_another_process_is_awaited_not_blocked_on(
    engine, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    other = sqlite3.connect(
        tmp_path / "assistantd.db", isolation_level=None, check_same_thread=False
    )
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    release_after = 0.3
    threading.Timer(release_after, other.execute, args=("COMMIT",)).start()

    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    async with make_sessionmaker(engine, write=True)() as session:
        await session.execute(text("INSERT INTO t (v) VALUES ('after the lock')"))
        await session.commit()
    waited = time.monotonic() - started
    stop.set()
    await ticking
    other.close()
    assert waited >= release_after * 0.8
    assert ticks >= 10, "the event loop was blocked while the write waited"


async def test_offloaded_statements_run_on_another_thread(engine) -> None:  # type: ignore[no-untyped-def]
    threads: list[int] = []

    async with make_sessionmaker(engine, write=False)() as session:
        connection = await session.connection()
        raw = driver_connection(await connection.get_raw_connection())
        assert raw is not None
        raw._conn.create_function("where_am_i", 0, lambda: threads.append(threading.get_ident()))
        await session.execute(text("SELECT where_am_i()"))
        async with offloaded(session):
            await session.execute(text("SELECT where_am_i()"))
        await session.execute(text("SELECT where_am_i()"))

    loop_thread = threading.get_ident()
    assert threads[0] == loop_thread
    assert threads[1] != loop_thread
    assert threads[2] == loop_thread

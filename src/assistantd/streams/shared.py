"""A project's open streams counted in PostgreSQL, so that its limit holds across every API
process (`kit.streams` has the in-process count SQLite uses, and the slots' shape).

Each open stream is a row of `open_streams`, held by this process (`holder`, random per
process). Taking a slot is one statement (`repository.take`), refused with OpenAI's 429 when the
project's live rows reach the limit. A released slot's row is deleted at once from the event
loop (a slot is released by a finalizer, which may run anywhere, so the ids queue for a task).
Every `ASSISTANTD_STREAM_HEARTBEAT_SECONDS` the process renews its rows and sweeps those nobody
renewed for `BEATS_TO_EXPIRE` beats: a process killed with its streams open stops counting
against its projects that long after its last beat.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import secrets
import threading

from sqlalchemy.ext.asyncio import AsyncEngine

from assistantd.db.engine import make_engine
from assistantd.kit.streams import StreamSlot, StreamSlots, refusal
from assistantd.settings import Settings
from assistantd.streams import repository

log = logging.getLogger(__name__)

# A row not renewed for this many beats is its dead process's: it no longer counts.
BEATS_TO_EXPIRE = 3
# Connections (kept, and more at a burst) to take and give back slots: one statement each.
POOL = (2, 6)


def make_stream_slots(settings: Settings) -> StreamSlots:
    """The open streams of this process (SQLite: the only API process), or of every API
    process, counted in the database (PostgreSQL); started on the running loop."""
    if settings.is_sqlite:
        return StreamSlots(settings.project_max_streams)
    # A pool of its own: a request takes its slot while it holds a connection of the main
    # pool, so a slot taken from that pool too could wait for a connection that requests
    # waiting in the same way hold (100 requests at once on a pool of 48 did).
    engine = make_engine(settings, pool=POOL)
    shared = SharedStreamSlots(
        settings.project_max_streams, engine, beat_seconds=settings.stream_heartbeat_seconds
    )
    shared.start()
    return shared


class SharedStreamSlots(StreamSlots):
    """The open streams of every API process on the database, through `engine` (the slots'
    own); `start` on the event loop that serves them, `aclose` when it stops."""

    def __init__(self, limit: int, engine: AsyncEngine, *, beat_seconds: float) -> None:
        super().__init__(limit)
        self.holder = secrets.token_hex(8)
        self._engine = engine
        self._bind = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._beat = beat_seconds
        self._live = beat_seconds * BEATS_TO_EXPIRE
        self._numbers = itertools.count()
        # Released slots whose rows are still to delete (appended from any thread).
        self._released: collections.deque[str] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._deleter: asyncio.Task[None] | None = None
        self._heart: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._heart = asyncio.create_task(self._beats())

    async def take(self, project: str) -> StreamSlot:
        """A slot for one more stream of `project`, counted across API processes, or OpenAI's
        429 when it holds all of its. One round trip."""
        if not self.limit:
            return StreamSlot(_keep, project)
        slot_id = f"{self.holder}-{next(self._numbers)}"
        async with self._bind.connect() as conn:
            used = await repository.take(
                conn, slot_id, project, self.holder, self.limit, self._live
            )
        if used >= self.limit:
            raise refusal(project, self.limit, used)
        return StreamSlot(self._release, slot_id)

    async def aclose(self) -> None:
        """Stops renewing, and removes this process's rows (its streams have ended)."""
        self._closed = True
        if self._heart is not None:
            self._heart.cancel()
        self._released.clear()
        try:
            async with self._bind.connect() as conn:
                await repository.drop(conn, self.holder)
        except Exception:  # they expire in a few beats
            log.warning("removing this process's open streams from the database failed")
        await self._engine.dispose()

    def _release(self, slot_id: str) -> None:
        self._released.append(slot_id)
        loop = self._loop
        if loop is None:
            return
        try:
            if threading.get_ident() == self._loop_thread:
                self._delete_soon()
            else:
                loop.call_soon_threadsafe(self._delete_soon)
        except RuntimeError:  # the loop has closed: the process is ending, and so do its rows
            pass

    def _delete_soon(self) -> None:
        if self._closed:  # `aclose` removed them all
            return
        if self._deleter is None or self._deleter.done():
            assert self._loop is not None
            self._deleter = self._loop.create_task(self._delete_released())

    async def _delete_released(self) -> None:
        while self._released:
            ids: list[str] = []
            while self._released and len(ids) < 1000:
                ids.append(self._released.popleft())
            try:
                async with self._bind.connect() as conn:
                    await repository.give_back(conn, ids)
            except Exception:
                # Still renewed while they wait, so they still count: the next beat retries.
                self._released.extendleft(reversed(ids))
                log.warning("giving back %d stream slots failed; retrying", len(ids))
                return

    async def _beats(self) -> None:
        while True:
            await asyncio.sleep(self._beat)
            self._delete_soon()
            try:
                async with self._bind.connect() as conn:
                    await repository.renew(conn, self.holder)
                    await repository.sweep(conn, self._live)
            except Exception:
                log.warning("renewing this process's open streams failed", exc_info=True)


def _keep(_key: str) -> None:
    """Giving back a slot no limit counts."""

"""The run event log: every server-sent event of a run, persisted in order with a sequence.

Whoever executes a run appends its events; the API streams them to clients from the table, so a
stream works whatever process runs the worker, and a client can re-attach from a sequence number.
Every event is also published to this process's feed (see `signals`), so streamers in the same
process get it without reading it back: emitted events at once, events written in a caller's
transaction once that commits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.db.models import RunEvent
from assistantd.runs import repository
from assistantd.runs.signals import Signals, notify_run_changed, publish_after_commit

log = logging.getLogger(__name__)

Payload = BaseModel | dict[str, Any]


def encode(data: Payload) -> str:
    if isinstance(data, BaseModel):
        return data.model_dump_json()
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


async def append(
    session: AsyncSession, signals: Signals, run_id: str, events: Sequence[tuple[str, Payload]]
) -> None:
    """Append events inside the caller's transaction (used while no worker holds the run)."""
    seq = await repository.last_seq(session, run_id)
    for name, data in events:
        seq += 1
        row = _row(run_id, seq, name, data)
        session.add(row)
        publish_after_commit(session, signals, run_id, seq, name, row.data)
    await session.flush()
    await notify_run_changed(session, signals, run_id, seq)


def _row(run_id: str, seq: int, name: str, data: Payload) -> RunEvent:
    return RunEvent(run_id=run_id, seq=seq, event=name, data=encode(data), created_at=time.time())


class EventWriter:
    """The events of one run a worker executes.

    `emit` is instant and keeps order; a background task persists what was emitted, writing
    whatever arrived while the previous write was in flight in the next one (so deltas are never
    held back by a timer, and a busy database gets fewer, larger writes). `stage` adds an event
    to a caller's transaction (state changes and their events commit together) after everything
    emitted before it is stored.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        signals: Signals,
        run_id: str,
        last_seq: int,
    ) -> None:
        self._sessions = sessions
        self._signals = signals
        self.run_id = run_id
        self.seq = last_seq
        self._pending: list[RunEvent] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._error: BaseException | None = None
        self._task = asyncio.create_task(self._persist(), name=f"events-{run_id}")

    def emit(self, name: str, data: Payload) -> None:
        if self._error is not None:
            raise self._error
        self.seq += 1
        row = _row(self.run_id, self.seq, name, data)
        self._pending.append(row)
        self._idle.clear()
        self._wake.set()
        self._signals.publish(self.run_id, row.seq, row.event, row.data)

    async def flush(self) -> None:
        """Wait until every emitted event is stored."""
        while not self._idle.is_set():
            if self._error is not None:
                raise self._error
            await self._idle.wait()
        if self._error is not None:
            raise self._error

    async def stage(self, session: AsyncSession, name: str, data: Payload) -> None:
        """Add an event to `session`'s transaction, after all emitted ones.

        Call `flush()` before the session begins: on SQLite the background write needs the
        write lock that session would hold, so flushing inside it would wait on itself.
        """
        if not self._idle.is_set():
            raise RuntimeError("flush() the writer before staging events in a transaction")
        self.seq += 1
        row = _row(self.run_id, self.seq, name, data)
        session.add(row)
        publish_after_commit(session, self._signals, self.run_id, row.seq, row.event, row.data)
        await notify_run_changed(session, self._signals, self.run_id, row.seq)

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _persist(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._write(batch)
                except Exception as exc:
                    log.exception("could not store events of run %s", self.run_id)
                    self._error = exc
                    self._idle.set()
                    return
            self._idle.set()

    async def _write(self, batch: list[RunEvent]) -> None:
        for attempt in range(5):
            try:
                async with self._sessions() as session:
                    session.add_all(batch)
                    await notify_run_changed(session, self._signals, self.run_id, batch[-1].seq)
                    await session.commit()
                return
            except Exception:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
                batch = [_row(e.run_id, e.seq, e.event, json.loads(e.data)) for e in batch]

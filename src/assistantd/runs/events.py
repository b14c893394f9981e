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
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.db.core import insert_into, row_values, table_of
from assistantd.db.engine import is_postgres
from assistantd.db.models import Base, RunEvent
from assistantd.runs import repository
from assistantd.runs.signals import Signals, events_stored, publish_after_commit

log = logging.getLogger(__name__)

Payload = BaseModel | dict[str, Any]


def _model(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode(data: Payload) -> str:
    if isinstance(data, BaseModel):
        return data.model_dump_json()
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=_model)


class _Encoder:
    """`encode` for the event numbered `seq`, reusing the text when the same payload object
    comes again in a row: an object is announced twice (`created` then `queued` or
    `in_progress`) and encoded once.

    A payload with a `sequence_number` slot (None; the Responses API's events) gets the
    event's position in it, counted from 0.
    """

    def __init__(self) -> None:
        self._last: tuple[Payload | None, str] = (None, "")

    def __call__(self, data: Payload, seq: int) -> str:
        if isinstance(data, dict) and "sequence_number" in data and data["sequence_number"] is None:
            return encode({**data, "sequence_number": seq - 1})
        last, text = self._last
        if data is not last:
            text = encode(data)
            self._last = (data, text)
        return text


async def append(
    session: AsyncSession,
    signals: Signals,
    run_id: str,
    events: Sequence[tuple[str, Payload]],
    *,
    last_seq: int | None = None,
) -> int:
    """Append events inside the caller's transaction (used while no worker holds the run);
    `last_seq` when the caller knows it (0 for a new run). Returns the new last number."""
    seq = await repository.last_seq(session, run_id) if last_seq is None else last_seq
    last = await append_many(session, signals, {run_id: (seq, events)})
    return last[run_id]


async def append_many(
    session: AsyncSession,
    signals: Signals,
    batches: Mapping[str, tuple[int, Sequence[tuple[str, Payload]]]],
) -> dict[str, int]:
    """`append` for several runs at once (one insert, one notification): each run id maps to
    its last event number and the events that follow it. Returns the new last numbers."""
    rows: list[dict[str, Any]] = []
    last: dict[str, int] = {}
    encoded = _Encoder()
    for run_id, (seq, events) in batches.items():
        for offset, (name, data) in enumerate(events, 1):
            rows.append(_row(run_id, seq + offset, name, encoded(data, seq + offset)))
        last[run_id] = seq + len(events)
    await _insert_events(session, signals, rows)
    events_stored(session, signals, last)
    return last


def _row(run_id: str, seq: int, name: str, data: str) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "seq": seq,
        "event": name,
        "data": data,
        "created_at": time.time(),
    }


async def _insert_events(
    session: AsyncSession, signals: Signals, rows: Sequence[dict[str, Any]]
) -> None:
    """Insert event rows in the session's transaction; this process's streamers get them once
    it commits."""
    if not rows:
        return
    await _insert_rows(session, rows)
    for row in rows:
        publish_after_commit(session, signals, row["run_id"], row["seq"], row["event"], row["data"])


# One INSERT of many rows on PostgreSQL, so the notify trigger fires once: the rows travel as
# one JSON text (json.dumps is C; the driver would escape text arrays element by element in
# Python), and the statement is compiled once (a multi-row VALUES is compiled anew each time).
_INSERT_JSON_ROWS = text(
    "INSERT INTO run_events (run_id, seq, event, data, created_at) "
    "SELECT r.run_id, r.seq, r.event, r.data, r.created_at "
    "FROM json_to_recordset(CAST(:rows AS json)) "
    "AS r(run_id text, seq integer, event text, data text, created_at double precision)"
)


async def _insert_rows(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Store event rows: one statement on PostgreSQL, an executemany on SQLite."""
    if is_postgres(session):
        await session.execute(_INSERT_JSON_ROWS, {"rows": json.dumps(rows)})
    else:
        await session.execute(insert_into(table_of(RunEvent)), list(rows))


class EventWriter:
    """The events of one run a worker executes.

    `emit` is instant and keeps order; the process's event store persists what was emitted in
    the background (see `_Store`). `stage` adds an event to a caller's transaction (state changes
    and their events commit together) after everything emitted before it is stored.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        signals: Signals,
        run_id: str,
        last_seq: int,
    ) -> None:
        self._signals = signals
        self._store = _Store.of(sessions, signals)
        self.run_id = run_id
        self.seq = last_seq
        self._unstored = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._error: BaseException | None = None
        self._staged: list[tuple[str, Payload]] = []
        self._encoded = _Encoder()

    def emit(self, name: str, data: Payload, *, rows: Sequence[Base] = ()) -> None:
        """Publish an event now and store it in the background. `rows` (new ORM objects) are
        inserted in the same transaction, before it: a message the event announces is stored
        with the announcement, off the path of the model's stream."""
        if self._error is not None:
            raise self._error
        self.seq += 1
        row = _row(self.run_id, self.seq, name, self._encoded(data, self.seq))
        self._unstored += 1
        self._idle.clear()
        self._store.add(self, row, [(table_of(type(new)), row_values(new)) for new in rows])
        self._signals.publish(self.run_id, self.seq, name, row["data"])

    async def flush(self) -> None:
        """Wait until every emitted event is stored."""
        await self._idle.wait()
        if self._error is not None:
            raise self._error

    def stage(self, name: str, data: Payload) -> None:
        """Add an event to the transaction the next `commit` commits, after all emitted ones."""
        self._staged.append((name, data))

    def discard_staged(self) -> None:
        """The transaction was rolled back: its staged events never happened."""
        self._staged.clear()

    async def commit(self, session: AsyncSession) -> None:
        """Store the staged events in `session` (one insert, one notification) and commit it:
        state changes and their events commit together.

        Call `flush()` before the session begins: on SQLite the background write needs the
        write lock that session would hold, so flushing inside it would wait on itself.
        """
        if not self._idle.is_set():
            raise RuntimeError("flush() the writer before committing staged events")
        staged, self._staged = self._staged, []
        last = self.seq
        if staged:
            appended = await append_many(session, self._signals, {self.run_id: (last, staged)})
            last = appended[self.run_id]
        await session.commit()
        self.seq = last

    async def close(self) -> None:
        await self.flush()

    def _stored(self, count: int) -> None:
        self._unstored -= count
        if self._unstored == 0:
            self._idle.set()

    def _failed(self, error: BaseException) -> None:
        self._error = error
        self._idle.set()


class _Store:
    """Persists the emitted events of every run of this process, many runs per transaction.

    While one write is in flight, whatever any run emits queues for the next one: deltas are
    never held back by a timer, and N busy runs cost one writer, not N writers fighting for the
    database (SQLite has one write lock). A batch that fails is retried; if it still fails, each
    run's events are retried alone, so one bad run (say, deleted mid-way) fails only itself.
    """

    _instances: weakref.WeakKeyDictionary[async_sessionmaker[AsyncSession], _Store] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, sessions: async_sessionmaker[AsyncSession], signals: Signals) -> None:
        self._sessions = sessions
        self._signals = signals
        self._queue: list[_Pending] = []
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, sessions: async_sessionmaker[AsyncSession], signals: Signals) -> _Store:
        store = cls._instances.get(sessions)
        if store is None or store._signals is not signals:
            store = cls._instances[sessions] = cls(sessions, signals)
        return store

    def add(self, writer: EventWriter, event: dict[str, Any], rows: list[_NewRow]) -> None:
        self._queue.append(_Pending(writer, event, rows))
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="run-events-store")

    async def _drain(self) -> None:
        batch: list[_Pending] = []
        try:
            # Let the streams these events woke send them first: on SQLite the write below runs
            # on the event loop's thread. It also gathers what the emitter emits right after.
            await asyncio.sleep(0)
            while self._queue:
                batch, self._queue = self._queue, []
                await self._write(batch)
                batch = []
        finally:
            self._task = None
            left, self._queue = batch + self._queue, []
            for pending in left:  # cancelled (shutdown): nobody waits forever
                pending.writer._failed(RuntimeError("the event store stopped"))

    async def _write(self, batch: list[_Pending]) -> None:
        by_writer: dict[EventWriter, list[_Pending]] = {}
        for pending in batch:
            by_writer.setdefault(pending.writer, []).append(pending)
        try:
            await self._insert(by_writer, attempts=5)
        except Exception as exc:
            if len(by_writer) == 1:
                self._give_up(by_writer, exc)
                return
            for writer, rows in list(by_writer.items()):
                try:
                    await self._insert({writer: rows}, attempts=2)
                except Exception as alone:
                    self._give_up({writer: by_writer.pop(writer)}, alone)
        for writer, rows in by_writer.items():
            writer._stored(len(rows))

    @staticmethod
    def _give_up(by_writer: dict[EventWriter, list[_Pending]], error: Exception) -> None:
        for writer in by_writer:
            log.error("could not store events of run %s", writer.run_id, exc_info=error)
            writer._failed(error)

    async def _insert(self, by_writer: dict[EventWriter, list[_Pending]], attempts: int) -> None:
        pendings = [pending for batch in by_writer.values() for pending in batch]
        new_rows = [new for pending in pendings for new in pending.rows]
        events = [pending.event for pending in pendings]
        last_seqs = {writer.run_id: batch[-1].event["seq"] for writer, batch in by_writer.items()}
        for attempt in range(attempts):
            try:
                async with self._sessions() as session:
                    for table, values in new_rows:
                        await session.execute(insert_into(table), [values])
                    await _insert_rows(session, events)
                    events_stored(session, self._signals, last_seqs)
                    await session.commit()
                return
            except Exception:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)


_NewRow = tuple[Table, dict[str, Any]]


@dataclass(frozen=True)
class _Pending:
    """An emitted event waiting to be stored, with the rows to insert before it."""

    writer: EventWriter
    event: dict[str, Any]
    rows: list[_NewRow]

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
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Table, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.db.core import column_values, insert_into, row_values, table_of, update_by_id
from assistantd.db.engine import is_postgres
from assistantd.db.models import Base, Run, RunEvent
from assistantd.kit import nesting
from assistantd.runs import repository
from assistantd.runs.signals import Signals, events_stored, on_outcome, publish_after_commit

log = logging.getLogger(__name__)

Payload = BaseModel | dict[str, Any]
# A change to one row: its model, its id, column values by attribute.
Amendment = tuple[type[Base], str, dict[str, Any]]


class LeaseLost(Exception):
    """The run is no longer this executor's (another worker or a cancel took it over): it
    must stop, writing nothing more."""


_HOLDERS = select(Run.id, Run.lease_owner).where(Run.id.in_(bindparam("ids", expanding=True)))


async def _holders(session: AsyncSession, run_ids: Sequence[str]) -> dict[str, str | None]:
    """Who holds each run's lease; on PostgreSQL the rows stay share-locked to the end of the
    transaction, so no one takes the runs over before what it writes is committed."""
    query = _HOLDERS.with_for_update(read=True) if is_postgres(session) else _HOLDERS
    rows = await session.execute(query, {"ids": list(run_ids)})
    # not dict(rows): a result has keys() (its columns), so dict() would take it for a mapping
    return {run_id: owner for run_id, owner in rows}  # noqa: C416


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=_model)


def _model(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode(data: Payload) -> str:
    try:
        if isinstance(data, BaseModel):
            return data.model_dump_json()
        if isinstance(data, dict) and any(isinstance(v, BaseModel) for v in data.values()):
            # An event carrying an object (`response.created`...): pydantic writes the object's
            # JSON itself, five times faster than dumping it to a dict for `json`.
            pairs = (f"{_dumps(key)}:{encode(value)}" for key, value in data.items())
            return "{" + ",".join(pairs) + "}"
        return _dumps(data)
    except (RecursionError, ValueError):
        # Nested deeper than pydantic's serializer or the C encoder go (a request cannot carry
        # that, see kit.nesting; what is already stored can): the same JSON, the slow way.
        return nesting.dumps(data)


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


def hand_over(
    session: AsyncSession, signals: Signals, run_id: str, events: Sequence[tuple[str, Payload]]
) -> list[dict[str, Any]]:
    """A new run's first events, published when `session` commits and not stored by it: the
    rows are for the run's `EventWriter` to store (its `opening`). For a run whose log nobody
    reads but its creator's own stream, started before its creation commits: one insert fewer
    on the way to its first token."""
    rows, _ = _event_rows({run_id: (0, events)})
    _publish_on_commit(session, signals, rows)
    return rows


async def append_many(
    session: AsyncSession,
    signals: Signals,
    batches: Mapping[str, tuple[int, Sequence[tuple[str, Payload]]]],
) -> dict[str, int]:
    """`append` for several runs at once (one insert, one notification): each run id maps to
    its last event number and the events that follow it. Returns the new last numbers."""
    rows, last = _event_rows(batches)
    await _insert_events(session, signals, rows)
    events_stored(session, signals, last)
    return last


def _event_rows(
    batches: Mapping[str, tuple[int, Sequence[tuple[str, Payload]]]],
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The rows of `append_many`'s events, and each run's new last number."""
    rows: list[dict[str, Any]] = []
    last: dict[str, int] = {}
    encoded = _Encoder()
    for run_id, (seq, events) in batches.items():
        for offset, (name, data) in enumerate(events, 1):
            rows.append(_row(run_id, seq + offset, name, encoded(data, seq + offset)))
        last[run_id] = seq + len(events)
    return rows, last


def _row(run_id: str, seq: int, name: str, data: str) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "seq": seq,
        "event": name,
        "data": data,
        "created_at": time.time(),
    }


async def _insert_events(
    session: AsyncSession,
    signals: Signals,
    rows: Sequence[dict[str, Any]],
    published: Sequence[dict[str, Any]] = (),
) -> None:
    """Insert event rows in the session's transaction; this process's streamers get them once
    it commits. `published` rows (events published when they were emitted) are inserted
    first, in the same statement."""
    if not rows and not published:
        return
    await _insert_rows(session, [*published, *rows])
    _publish_on_commit(session, signals, rows)


def _publish_on_commit(
    session: AsyncSession, signals: Signals, rows: Sequence[dict[str, Any]]
) -> None:
    """Hand event rows to this process's streamers once the session commits."""
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
        *,
        owner: str | None = None,
        hold_seconds: float = 0.0,
        created: asyncio.Future[bool] | None = None,
        opening: list[dict[str, Any]] | None = None,
    ) -> None:
        """`owner`, the worker holding the run's lease: what it writes is fenced by the lease
        (a writer whose run was taken over writes nothing and fails with `LeaseLost`).

        `hold_seconds`, for a run no streamer in another process waits for (this process's
        get every event from the feed at once): for that long from now, emitted events are
        held back and stored with the next `transaction`, or when the time is up. A short
        answer is then stored in the transaction that ends it rather than in a few of its own.

        `created`, for a run whose creation has not committed yet: everything emitted is held
        back (and published) until it resolves; True, it is stored as usual from then on;
        False (the run never existed), nothing is ever stored.

        `opening`, with `created`: the rows of the run's first events, which its creator
        publishes at the commit and leaves to this writer to store (`hand_over`; filled by
        the time the creation commits): they are held first, before all it emits."""
        self._signals = signals
        self._sessions = sessions
        self._store = _Store.of(sessions, signals)
        self._hold_until = time.monotonic() + hold_seconds if hold_seconds > 0 else 0.0
        self._held: list[_Pending] = []
        self._release_timer: asyncio.TimerHandle | None = None
        self._created = created
        self._opening = opening
        if created is not None and not created.done():
            created.add_done_callback(self._creation_resolved)
        self.run_id = run_id
        self.owner = owner
        self.seq = last_seq
        self._unstored = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._error: BaseException | None = None
        self._staged: list[tuple[str, Payload]] = []
        # The held-back events `transaction` stores, inserted by `commit` with the staged ones
        # (one statement).
        self._carried: list[dict[str, Any]] = []
        self._encoded = _Encoder()

    def emit(
        self,
        name: str,
        data: Payload,
        *,
        rows: Sequence[Base] = (),
        update: tuple[type[Base], str, dict[str, Any]] | None = None,
    ) -> None:
        """Publish an event now and store it in the background. `rows` (new ORM objects) are
        inserted in the same transaction, before it: a message the event announces is stored
        with the announcement, off the path of the model's stream. `update` (a model, a row id
        and column values by attribute) is applied in that transaction too: a checkpoint of
        what a row streamed so far."""
        if self._error is not None:
            raise self._error
        self.seq += 1
        row = _row(self.run_id, self.seq, name, self._encoded(data, self.seq))
        changes: list[_Change] = []
        if update is not None:
            model, row_id, values = update
            changes.append((table_of(model), row_id, column_values(model, values)))
        pending = _Pending(
            self, row, [(table_of(type(new)), row_values(new)) for new in rows], changes
        )
        if (self._hold_until and time.monotonic() < self._hold_until) or self._uncreated():
            self._held.append(pending)
            if self._release_timer is None and self._hold_until:
                loop = asyncio.get_running_loop()
                delay = max(self._hold_until - time.monotonic(), 0.0)
                self._release_timer = loop.call_later(delay, self.release)
        else:
            self.release()  # what is held goes first
            self._store_later(pending)
        self._signals.publish(self.run_id, self.seq, name, row["data"])

    def _store_later(self, pending: _Pending) -> None:
        self._unstored += 1
        self._idle.clear()
        self._store.add(pending)

    def release(self) -> None:
        """Stop holding events back: what is held goes to the event store now."""
        self._hold_until = 0.0
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        if self._uncreated():
            return  # stored once the run is created (`_creation_resolved`), never if it is not
        self._hold_opening()
        held, self._held = self._held, []
        for pending in held:
            self._store_later(pending)

    def _hold_opening(self) -> None:
        """The creation committed: what it handed over is held, first."""
        opening, self._opening = self._opening, None
        if opening:
            self._held[:0] = [_Pending(self, row, [], []) for row in opening]

    def _creation_resolved(self, created: asyncio.Future[bool]) -> None:
        if not created.result():
            self._opening = None
            self._held.clear()  # the run never existed: nothing of it is stored
        elif not self._hold_until:
            self.release()  # the hold was up already: what it kept goes now

    def _uncreated(self) -> bool:
        created = self._created
        return created is not None and not (created.done() and created.result())

    @asynccontextmanager
    async def transaction(self, amend: Amendment | None = None) -> AsyncIterator[AsyncSession]:
        """A session for a state change of the run, to end with `commit`: what the writer
        emitted is stored before it or, what it held back, first thing in it.

        `amend` (a model, the id of a row an emitted event announced, values by attribute) is
        this transaction's change to that row: made to the row as it is inserted, if it was
        still held back (no UPDATE after its INSERT), else by an UPDATE. Only the transaction
        carries it: if it does not commit, what is held again is as it was emitted, so a
        later write never stores a change that was rolled back (say, a message completed by
        a run's final transaction that failed)."""
        if self._uncreated():
            raise RuntimeError("a run's transaction before its creation committed")
        await self.flush()
        async with self._sessions() as session:
            self._hold_opening()
            held, self._held = self._held, []
            written, in_place = _amended(held, amend) if amend is not None else (held, False)
            if held:
                # Their events go with the staged ones, in `commit`'s insert. The transaction
                # begins now (their rows may be none), so that its end, whatever it is, is told
                # to `outcome`.
                await session.connection()
                self._carried = await _write_pending(session, written)
                events_stored(session, self._signals, {self.run_id: held[-1].event["seq"]})

                def outcome(committed: bool) -> None:
                    if not committed:  # they were not stored: hold them again
                        self._carried = []
                        self._held[:0] = held

                on_outcome(session, outcome)
            if amend is not None and not in_place:
                model, row_id, values = amend
                await update_by_id(session, table_of(model), row_id, column_values(model, values))
            yield session

    async def flush(self) -> None:
        """Wait until the emitted events handed to the event store are stored (what is held
        back is stored by `transaction`)."""
        await self._idle.wait()
        if self._error is not None:
            raise self._error

    def stage(self, name: str, data: Payload) -> None:
        """Add an event to the transaction the next `commit` commits, after all emitted ones."""
        self._staged.append((name, data))

    def discard_staged(self) -> None:
        """The transaction was rolled back: its staged events never happened."""
        self._staged.clear()
        self._carried = []

    async def commit(self, session: AsyncSession, *, fence: bool = True) -> None:
        """Store the staged events in `session` (one insert, one notification) and commit it:
        state changes and their events commit together. With `fence` (unless a guarded status
        change in the transaction is the fence already), only while this writer's owner still
        holds the run: else it rolls back and raises `LeaseLost`.

        Call `flush()` before the session begins: on SQLite the background write needs the
        write lock that session would hold, so flushing inside it would wait on itself.
        """
        if not self._idle.is_set():
            raise RuntimeError("flush() the writer before committing staged events")
        if fence and self.owner is not None:
            holders = await _holders(session, [self.run_id])
            if holders.get(self.run_id) != self.owner:
                self.discard_staged()
                await session.rollback()
                raise LeaseLost()
        staged, self._staged = self._staged, []
        carried, self._carried = self._carried, []
        rows, last = _event_rows({self.run_id: (self.seq, staged)})
        await _insert_events(session, self._signals, rows, published=carried)
        if staged:
            events_stored(session, self._signals, last)
        await session.commit()
        self.seq = last[self.run_id]

    async def close(self) -> None:
        self.release()
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

    def add(self, pending: _Pending) -> None:
        self._queue.append(pending)
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
        fenced: set[EventWriter] = set()
        try:
            fenced = await self._insert(by_writer, attempts=5)
        except Exception as exc:
            if len(by_writer) == 1:
                self._give_up(by_writer, exc)
                return
            for writer, rows in list(by_writer.items()):
                try:
                    fenced |= await self._insert({writer: rows}, attempts=2)
                except Exception as alone:
                    self._give_up({writer: by_writer.pop(writer)}, alone)
        for writer, rows in by_writer.items():
            if writer in fenced:
                writer._failed(LeaseLost())
            else:
                writer._stored(len(rows))

    @staticmethod
    def _give_up(by_writer: dict[EventWriter, list[_Pending]], error: Exception) -> None:
        for writer in by_writer:
            log.error("could not store events of run %s", writer.run_id, exc_info=error)
            writer._failed(error)

    async def _insert(
        self, by_writer: dict[EventWriter, list[_Pending]], attempts: int
    ) -> set[EventWriter]:
        """Store the writers' rows, events and changes in one transaction, but for writers
        whose run another worker holds now: those are returned, having written nothing."""
        for attempt in range(attempts):
            try:
                async with self._sessions() as session:
                    owned = [w.run_id for w in by_writer if w.owner is not None]
                    holders = await _holders(session, owned) if owned else {}
                    fenced = {
                        w
                        for w in by_writer
                        if w.owner is not None and holders.get(w.run_id) != w.owner
                    }
                    kept = [(w, batch) for w, batch in by_writer.items() if w not in fenced]
                    pendings = [pending for _, batch in kept for pending in batch]
                    await _insert_rows(session, await _write_pending(session, pendings))
                    last_seqs = {w.run_id: batch[-1].event["seq"] for w, batch in kept}
                    events_stored(session, self._signals, last_seqs)
                    await session.commit()
                return fenced
            except Exception:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
        return set()


async def _write_pending(
    session: AsyncSession, pendings: Sequence[_Pending]
) -> list[dict[str, Any]]:
    """Store what emitted events carry in `session`: the rows they announce, then the changes
    to rows. Returns the events' own rows, for the caller to insert (with others, in one
    statement)."""
    for pending in pendings:
        for table, values in pending.rows:
            await session.execute(insert_into(table), [values])
    for pending in pendings:
        for table, row_id, values in pending.changes:
            await update_by_id(session, table, row_id, values)
    return [pending.event for pending in pendings]


def _amended(held: list[_Pending], amendment: Amendment) -> tuple[list[_Pending], bool]:
    """`held` with `amendment` made to the row one of them inserts (copies: the originals stay
    as emitted), and whether one does; what they held to change that row is dropped."""
    model, row_id, values = amendment
    table = table_of(model)
    if not any(t is table and row["id"] == row_id for p in held for t, row in p.rows):
        return held, False
    columns = column_values(model, values)
    return [
        replace(
            pending,
            rows=[
                (t, {**row, **columns}) if t is table and row["id"] == row_id else (t, row)
                for t, row in pending.rows
            ],
            changes=[c for c in pending.changes if not (c[0] is table and c[1] == row_id)],
        )
        for pending in held
    ], True


_NewRow = tuple[Table, dict[str, Any]]
_Change = tuple[Table, str, dict[str, Any]]  # a table, a row id, column values


@dataclass(frozen=True)
class _Pending:
    """An emitted event waiting to be stored, with the rows to insert before it."""

    writer: EventWriter
    event: dict[str, Any]
    rows: list[_NewRow]
    changes: list[_Change]

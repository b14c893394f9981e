"""Wake-ups between the API, the run worker and event streamers, and the in-process event feed.

In one process (SQLite: `serve` runs the worker) these are asyncio events. Across processes
(PostgreSQL) the same wake-ups travel as NOTIFY, sent inside the transaction that made the change
so they arrive only once it is committed; one LISTEN connection per process fans them out here.
Stored events notify by themselves: a trigger on `run_events` (migration 0002) announces each
insert's runs and last sequence numbers; so do queued runs, by a trigger on `runs` (migration
0009).

The feed is the fast path of streaming: whoever writes a run's events in this process also
publishes them here, numbered, the moment they exist, and every streamer of that run receives
them without a database round trip. The event log table stays the source of truth: a streamer
reads it whenever it misses something (events written by another process, or more than its
bounded buffer holds while its client is slow).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from assistantd.db.engine import is_postgres

log = logging.getLogger(__name__)

# Migration 0002's trigger on run_events notifies on these channels too, by name.
RUN_EVENTS_CHANNEL = "assistantd_run_events"
RUNS_QUEUED_CHANNEL = "assistantd_runs_queued"
_AFTER_COMMIT = "assistantd_after_commit"
_OUTCOME = "assistantd_outcome"
_LAUNCHES = "assistantd_launches"
# Loop turns a started run needs to send its model request (httpx yields ~4 times on the way).
_HEAD_START_TURNS = 8
# Events a feed holds for a streamer that has not sent them yet; beyond that it drops them and
# the streamer reads them back from the table (so a slow client costs bounded memory).
FEED_LIMIT = 128


@dataclass(frozen=True, slots=True)
class FeedEvent:
    seq: int
    name: str
    data: str  # one-line JSON


def _seq(item: FeedEvent) -> int:
    return item.seq


class Feed:
    """One streamer's view of a run: events published in this process, and 'read the table'.

    Open it with `Signals.open_feed`, close it when the stream ends. A feed nobody holds any
    more (a response that was never sent) disappears with its last reference.
    """

    def __init__(self, signals: Signals, run_id: str, after: int, limit: int) -> None:
        self.events: deque[FeedEvent] = deque()
        self.wake = asyncio.Event()
        self.delivered = after  # the streamer's position (highest sequence number sent)
        self.stale = True  # the table may hold events the streamer has not sent
        self._limit = limit
        self._signals = signals
        self._run_id = run_id

    def close(self) -> None:
        self._signals._forget(self._run_id, id(self))

    def next_event(self) -> FeedEvent | None:
        """The event right after `delivered`, if it is here; drops older ones."""
        events = self.events
        while events and events[0].seq <= self.delivered:
            events.popleft()
        if events and events[0].seq == self.delivered + 1:
            return events.popleft()
        return None

    def _publish(self, item: FeedEvent) -> None:
        events = self.events
        if len(events) >= self._limit:
            events.clear()
            self.stale = True
        if not events or item.seq > events[-1].seq:
            events.append(item)
        else:
            # Published out of order: a run started before its creation committed publishes
            # its model's first tokens before the creation's own events (`response.created`)
            # are published at the commit. The feed keeps sequence order all the same.
            at = bisect.bisect_left(events, item.seq, key=_seq)
            if at == len(events) or events[at].seq != item.seq:
                events.insert(at, item)
        self.wake.set()

    def _stored(self, upto: int | None) -> None:
        if upto is None or upto > self._covered():
            self.stale = True
            self.wake.set()

    def _covered(self) -> int:
        """The highest sequence number up to which the streamer has every event at hand."""
        covered = self.delivered
        for item in self.events:
            if item.seq == covered + 1:
                covered = item.seq
            elif item.seq > covered:
                break
        return covered


class Signals:
    """Per-process wake-ups ('run R has new events', 'a run was queued') and the event feed."""

    def __init__(self) -> None:
        # Feeds by run, held weakly: a stream response that is never sent lets its feed go.
        self._feeds: dict[str, dict[int, weakref.ref[Feed]]] = {}
        # What runs started before their creation committed published before anybody opened
        # a feed (see `expect`); None once more than a feed holds came.
        self._early: dict[str, list[FeedEvent] | None] = {}
        self.queued = asyncio.Event()

    def run_changed(self, run_id: str, upto: int | None = None) -> None:
        """The table holds events of `run_id` up to sequence number `upto` (None: unknown)."""
        for feed in self._live(run_id):
            feed._stored(upto)

    def publish(self, run_id: str, seq: int, name: str, data: str) -> None:
        """Hand an event to this process's streamers of `run_id`, in sequence order."""
        feeds = self._live(run_id)
        if feeds:
            item = FeedEvent(seq, name, data)
            for feed in feeds:
                feed._publish(item)
        elif (early := self._early.get(run_id)) is not None:
            if len(early) < FEED_LIMIT:
                early.append(FeedEvent(seq, name, data))
            else:
                self._early[run_id] = None

    def expect(self, run_id: str) -> None:
        """`run_id` starts before the request creating it opens its stream (`open_feed`, before
        the commit): what it publishes until then is kept for that feed; `unexpect` when the
        creation has ended. (A model that answers at once would otherwise have its first
        tokens published to nobody, and the stream would wait to read them from the table.)"""
        self._early[run_id] = []

    def unexpect(self, run_id: str) -> None:
        self._early.pop(run_id, None)

    def run_queued(self) -> None:
        self.queued.set()

    @property
    def watched_runs(self) -> list[str]:
        return list(self._feeds)

    def open_feed(
        self, run_id: str, after: int = 0, *, limit: int = FEED_LIMIT, fresh: bool = False
    ) -> Feed:
        """Receive the events of `run_id` published here from now on, after sequence `after`.
        `fresh`: the run's creation has not committed, so the table has none of its events
        (those published already are at hand when the run was `expect`ed)."""
        feed = Feed(self, run_id, after, limit)
        feed.stale = not fresh
        if run_id in self._early:
            early = self._early.pop(run_id)
            for item in early or ():
                if item.seq > after:
                    feed._publish(item)
            if early is None:
                feed.stale = True  # more than a feed keeps: the table will have them
        key = id(feed)

        def gone(_: weakref.ref[Feed]) -> None:
            self._forget(run_id, key)

        self._feeds.setdefault(run_id, {})[key] = weakref.ref(feed, gone)
        return feed

    def _live(self, run_id: str) -> list[Feed]:
        refs = self._feeds.get(run_id)
        if not refs:
            return []
        return [feed for ref in list(refs.values()) if (feed := ref()) is not None]

    def _forget(self, run_id: str, key: int) -> None:
        feeds = self._feeds.get(run_id)
        if feeds is not None:
            feeds.pop(key, None)
            if not feeds:
                del self._feeds[run_id]


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's current transaction has committed."""
    session.sync_session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def launch_on_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """`after_commit` for a callback that starts work in this process (a run's executor): the
    request that commits gives it a head start, see `head_start`."""
    after_commit(session, callback)
    session.sync_session.info[_LAUNCHES] = True


async def head_start(session: AsyncSession) -> None:
    """After a commit that started work here, let the event loop turn a few times before the
    response is written: a new run's model request leaves first (writing a response takes the
    loop ~0.5 ms, and the client waits for the model's first token, not for `queued`)."""
    if session.sync_session.info.pop(_LAUNCHES, False):
        await give_way()


async def give_way(turns: int = _HEAD_START_TURNS) -> None:
    """Let the event loop turn `turns` times: by default, until a run started just now has
    sent its model request."""
    for _ in range(turns):
        await asyncio.sleep(0)


def on_outcome(session: AsyncSession, callback: Callable[[bool], None]) -> None:
    """Call `callback(True)` once the session's current transaction has committed (before the
    `after_commit` callbacks), `callback(False)` if it ends any other way."""
    session.sync_session.info.setdefault(_OUTCOME, []).append(callback)


def _tell_outcome(sync_session: Session, committed: bool) -> None:
    for callback in sync_session.info.pop(_OUTCOME, []):
        try:
            callback(committed)
        except Exception:
            log.exception("transaction outcome callback failed")


@event.listens_for(Session, "after_commit")
def _run_after_commit(sync_session: Session) -> None:
    _tell_outcome(sync_session, True)
    for callback in sync_session.info.pop(_AFTER_COMMIT, []):
        try:
            callback()
        except Exception:  # a wake-up must never break a committed request
            log.exception("after-commit callback failed")


@event.listens_for(Session, "after_transaction_end")
def _ended_uncommitted(sync_session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        _tell_outcome(sync_session, False)  # nothing left after a commit


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(sync_session: Session) -> None:
    sync_session.info.pop(_AFTER_COMMIT, None)


async def notify_run_changed(session: AsyncSession, signals: Signals, run_id: str) -> None:
    """Wake streamers of `run_id` here and, on PostgreSQL, in every process, after commit: for
    a change that stores no event (a stored event wakes them by itself, see `events_stored`)."""
    if is_postgres(session):
        await session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": RUN_EVENTS_CHANNEL, "payload": run_id},
        )
    after_commit(session, lambda: signals.run_changed(run_id))


def events_stored(session: AsyncSession, signals: Signals, upto: dict[str, int]) -> None:
    """The transaction stores events of these runs, up to these sequence numbers: wake this
    process's streamers of them once it commits. Other processes hear it from PostgreSQL: the
    `run_events` trigger (migration 0002) notifies for every insert, without a statement here.
    """
    for run_id, seq in upto.items():
        after_commit(session, partial(signals.run_changed, run_id, seq))


def publish_after_commit(
    session: AsyncSession, signals: Signals, run_id: str, seq: int, name: str, data: str
) -> None:
    """Feed an event to this process's streamers once the transaction storing it commits."""
    after_commit(session, lambda: signals.publish(run_id, seq, name, data))


def _parse_run_note(payload: str) -> tuple[str, int | None]:
    run_id, _, upto = payload.partition(" ")
    return run_id, int(upto) if upto.isdigit() else None


def run_queued_on_commit(session: AsyncSession, signals: Signals) -> None:
    """Wake this process's workers once the transaction, which queues a run, commits. Other
    processes hear it from PostgreSQL: the `runs` trigger (migration 0009) notifies for every
    run inserted or updated `queued`, without a statement here."""
    after_commit(session, signals.run_queued)


async def listen_postgres(database_url: str, signals: Signals, *, run_events: bool = True) -> None:
    """Forward PostgreSQL notifications into `signals` until cancelled; reconnects on failure.

    Without `run_events` only queued runs are heard: a process that streams no events (a
    standalone worker) need not receive a notification for every event batch of every run.
    """
    import psycopg

    conninfo = (
        make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                if run_events:
                    await conn.execute(f"LISTEN {RUN_EVENTS_CHANNEL}")
                await conn.execute(f"LISTEN {RUNS_QUEUED_CHANNEL}")
                # Anything may have happened while we were not listening.
                signals.run_queued()
                for run_id in signals.watched_runs:
                    signals.run_changed(run_id)
                async for note in conn.notifies():
                    if note.channel == RUN_EVENTS_CHANNEL:
                        signals.run_changed(*_parse_run_note(note.payload))
                    else:
                        signals.run_queued()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("LISTEN connection lost; reconnecting", exc_info=True)
            await asyncio.sleep(1.0)

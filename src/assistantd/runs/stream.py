"""Stream a run's events as server-sent events.

The stream ends with `done` once the run reaches a terminal state or `requires_action`. The run
goes on when a client disconnects; `GET .../runs/{id}/events?after=N` (an assistantd extension)
re-attaches after sequence number N.

Events come from this process's feed when they are published here (the run executes in this
process, or this process wrote them), and from the event log table otherwise: events another
process wrote, and whatever a slow client let the feed drop. They are sent strictly in sequence
order, each once. Memory per stream is bounded: the feed holds at most `FEED_LIMIT` events, a read
fetches at most `PAGE` rows, and each frame waits for the client to take the previous one
(the ASGI server's `send` blocks while the socket buffer is full).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.db.core import is_transient
from assistantd.errors import ServerError
from assistantd.kit.sse import DONE, encode_event
from assistantd.runs import repository
from assistantd.runs.signals import Feed, FeedEvent, Signals, give_way

log = logging.getLogger(__name__)

END_EVENTS = frozenset(
    {
        "thread.run.completed",
        "thread.run.failed",
        "thread.run.cancelled",
        "thread.run.expired",
        "thread.run.incomplete",
        "thread.run.requires_action",
    }
)
# Rows read from the table at once.
PAGE = 100
# A safety net: streamers re-read the table this often even without a wake-up.
POLL_SECONDS = 2.0
# Loop turns a stream that opens with its run's creation gives that run first (see `_events`).
_OPENING_TURNS = 3
# While the database is unreachable (a restart, dropped connections), a stream waits this long
# for it, reading again with backoff, before it ends with an error event.
OUTAGE_SECONDS = 60.0


@dataclass(frozen=True)
class Ending:
    """How a surface's stream ends: after one of `events`, then `done` (if any)."""

    events: frozenset[str]
    done: str | None


THREAD_RUN = Ending(END_EVENTS, DONE)


def open_stream(
    sessions: async_sessionmaker[AsyncSession],
    signals: Signals,
    run_id: str,
    after_seq: int = 0,
    *,
    before_commit: bool = False,
    ending: Ending = THREAD_RUN,
) -> AsyncIterator[str]:
    """The SSE frames of `run_id` after sequence number `after_seq`, through its end.

    Its feed opens now: call it with `before_commit=True` inside the transaction that writes the
    first events to send (create run, submit tool outputs), and the stream sends what this
    process writes without reading the table first.
    """
    return _frames(
        open_events(
            sessions, signals, run_id, after_seq, before_commit=before_commit, ending=ending
        ),
        ending,
    )


def open_events(
    sessions: async_sessionmaker[AsyncSession],
    signals: Signals,
    run_id: str,
    after_seq: int = 0,
    *,
    before_commit: bool = False,
    ending: Ending = THREAD_RUN,
) -> AsyncIterator[list[FeedEvent]]:
    """`open_stream`'s events, in batches (what arrived together), through the end event."""
    feed = signals.open_feed(run_id, after_seq, fresh=before_commit)
    return _events(sessions, feed, run_id, attached=not before_commit, ends=ending.events)


async def _frames(batches: AsyncIterator[list[FeedEvent]], ending: Ending) -> AsyncIterator[str]:
    try:
        async for batch in batches:
            if not batch:  # attached after the end
                if ending.done:
                    yield ending.done
                return
            # A burst of events (say the four that open a message before its first delta) goes
            # out in one write, not four.
            frames = "".join(encode_event(e.name, e.data, e.seq) for e in batch)
            if batch[-1].name in ending.events and ending.done:
                frames += ending.done
            yield frames
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("stream of a run failed")
        yield error_frame()
        if ending.done:
            yield ending.done


async def _events(
    sessions: async_sessionmaker[AsyncSession],
    feed: Feed,
    run_id: str,
    *,
    attached: bool,
    ends: frozenset[str],
) -> AsyncIterator[list[FeedEvent]]:
    """Batches of events in sequence order, each once, through one of `ends` (an empty batch
    when attached after the run's last event: nothing more will come)."""
    try:
        first_read = attached
        opening = not attached
        while True:
            if opening:
                # A stream that opens with its run's creation: a run started early may have
                # its model's first token at hand; let it publish what follows, so the
                # opening events and the first token go out in one write.
                opening = False
                await give_way(_OPENING_TURNS)
            feed.wake.clear()
            batch: list[FeedEvent] = []
            while (item := feed.next_event()) is not None:
                feed.delivered = item.seq
                batch.append(item)
                if item.name in ends:
                    yield batch
                    return
            if batch:
                yield batch
            if not feed.stale:
                try:
                    async with asyncio.timeout(POLL_SECONDS):
                        await feed.wake.wait()
                except TimeoutError:
                    feed.stale = True
                continue
            feed.stale = False
            rows, ended = await _read(sessions, run_id, feed.delivered, first_read, ends)
            if ended:
                yield []
                return
            first_read = False
            if len(rows) == PAGE:
                feed.stale = True  # there may be more
            batch = []
            for row in rows:
                if row.seq <= feed.delivered:
                    continue
                feed.delivered = row.seq
                batch.append(FeedEvent(row.seq, row.event, row.data))
                if row.event in ends:
                    break
            if batch:
                yield batch
                if batch[-1].name in ends:
                    return
    finally:
        feed.close()


async def _read(
    sessions: async_sessionmaker[AsyncSession],
    run_id: str,
    delivered: int,
    first_read: bool,
    ends: frozenset[str],
) -> tuple[list[Any], bool]:
    """The events after `delivered` (a page), and whether the run had already ended when this
    first read found nothing; waits out a database outage of up to `OUTAGE_SECONDS`."""
    delay, waited = 0.1, 0.0
    while True:
        try:
            async with sessions() as session:
                rows = list(await repository.events_after(session, run_id, delivered, PAGE))
                ended = (
                    first_read
                    and not rows
                    and await repository.last_event_name(session, run_id) in ends
                )
            return rows, ended
        except DBAPIError as exc:
            if not is_transient(exc) or waited >= OUTAGE_SECONDS:
                raise
            log.info("stream of %s: database unavailable, reading again in %.1f s", run_id, delay)
        await asyncio.sleep(delay)
        waited += delay
        delay = min(delay * 2, 2.0)


def error_frame() -> str:
    """`event: error` with `{"error": {...}}`, the shape both official SDKs raise on."""
    error = ServerError("The server had an error while streaming this run.")
    return encode_event("error", json.dumps(error.body(), separators=(",", ":")))

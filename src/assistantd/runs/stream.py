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

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.errors import ServerError
from assistantd.kit.sse import DONE, encode_event
from assistantd.runs import repository
from assistantd.runs.signals import Feed, Signals

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


def open_stream(
    sessions: async_sessionmaker[AsyncSession],
    signals: Signals,
    run_id: str,
    after_seq: int = 0,
    *,
    before_commit: bool = False,
) -> AsyncIterator[str]:
    """The SSE frames of `run_id` after sequence number `after_seq`, through `done`.

    Its feed opens now: call it with `before_commit=True` inside the transaction that writes the
    first events to send (create run, submit tool outputs), and the stream sends what this
    process writes without reading the table first.
    """
    feed = signals.open_feed(run_id, after_seq)
    feed.stale = not before_commit
    return _frames(sessions, feed, run_id, attached=not before_commit)


async def _frames(
    sessions: async_sessionmaker[AsyncSession], feed: Feed, run_id: str, *, attached: bool
) -> AsyncIterator[str]:
    try:
        first_read = attached
        while True:
            feed.wake.clear()
            # What the feed holds goes out in one write (a burst of events, say the four that
            # open a message before its first delta, costs one send, not four).
            frames: list[str] = []
            while (item := feed.next_event()) is not None:
                feed.delivered = item.seq
                frames.append(encode_event(item.name, item.data, item.seq))
                if item.name in END_EVENTS:
                    frames.append(DONE)
                    yield "".join(frames)
                    return
            if frames:
                yield "".join(frames)
            if not feed.stale:
                try:
                    async with asyncio.timeout(POLL_SECONDS):
                        await feed.wake.wait()
                except TimeoutError:
                    feed.stale = True
                continue
            feed.stale = False
            async with sessions() as session:
                rows = await repository.events_after(session, run_id, feed.delivered, PAGE)
                ended = (
                    first_read
                    and not rows
                    and await repository.last_event_name(session, run_id) in END_EVENTS
                )
            if ended:  # attached after the run's last event: nothing more will come
                yield DONE
                return
            first_read = False
            if len(rows) == PAGE:
                feed.stale = True  # there may be more
            for row in rows:
                if row.seq <= feed.delivered:
                    continue
                feed.delivered = row.seq
                yield encode_event(row.event, row.data, row.seq)
                if row.event in END_EVENTS:
                    yield DONE
                    return
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("stream of run %s failed", run_id)
        yield error_frame()
        yield DONE
    finally:
        feed.close()


def error_frame() -> str:
    """`event: error` with `{"error": {...}}`, the shape both official SDKs raise on."""
    error = ServerError("The server had an error while streaming this run.")
    return encode_event("error", json.dumps(error.body(), separators=(",", ":")))

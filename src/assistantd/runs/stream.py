"""Stream a run's events from the event log as server-sent events.

The stream ends with `done` once the run reaches a terminal state or `requires_action`. The run
goes on when a client disconnects; `GET .../runs/{id}/events?after=N` (an assistantd extension)
re-attaches from sequence number N.
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
from assistantd.runs.signals import Signals

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
# A safety net: streamers re-read the log this often even without a wake-up.
_POLL_SECONDS = 0.5


async def run_events(
    sessions: async_sessionmaker[AsyncSession],
    signals: Signals,
    run_id: str,
    after_seq: int = 0,
) -> AsyncIterator[str]:
    last = after_seq
    try:
        with signals.watch(run_id) as waiter:
            while True:
                waiter.clear()
                async with sessions() as session:
                    rows = await repository.events_after(session, run_id, last)
                for row in rows:
                    last = row.seq
                    yield encode_event(row.event, row.data, row.seq)
                    if row.event in END_EVENTS:
                        yield DONE
                        return
                if not rows:
                    try:
                        await asyncio.wait_for(waiter.wait(), _POLL_SECONDS)
                    except TimeoutError:
                        pass
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("stream of run %s failed", run_id)
        error = ServerError("The server had an error while streaming this run.")
        yield encode_event("error", json.dumps(error.body()))
        yield DONE

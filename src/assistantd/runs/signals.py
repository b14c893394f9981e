"""Wake-ups between the API, the run worker and event streamers.

In one process (SQLite: `serve` runs the worker) these are asyncio events. Across processes
(PostgreSQL) the same wake-ups travel as NOTIFY, sent inside the transaction that made the change
so they arrive only once it is committed; one LISTEN connection per process fans them out here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from assistantd.db.engine import is_postgres

log = logging.getLogger(__name__)

RUN_EVENTS_CHANNEL = "assistantd_run_events"
RUNS_QUEUED_CHANNEL = "assistantd_runs_queued"
_AFTER_COMMIT = "assistantd_after_commit"


class Signals:
    """Per-process wake-ups: 'run R has new events', 'a run was queued'."""

    def __init__(self) -> None:
        self._run_waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.queued = asyncio.Event()

    def run_changed(self, run_id: str) -> None:
        for waiter in self._run_waiters.get(run_id, ()):
            waiter.set()

    def run_queued(self) -> None:
        self.queued.set()

    @contextlib.contextmanager
    def watch(self, run_id: str) -> Iterator[asyncio.Event]:
        waiter = asyncio.Event()
        self._run_waiters[run_id].add(waiter)
        try:
            yield waiter
        finally:
            waiters = self._run_waiters.get(run_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._run_waiters[run_id]


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's current transaction has committed."""
    session.sync_session.info.setdefault(_AFTER_COMMIT, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(sync_session: Session) -> None:
    for callback in sync_session.info.pop(_AFTER_COMMIT, []):
        try:
            callback()
        except Exception:  # a wake-up must never break a committed request
            log.exception("after-commit callback failed")


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(sync_session: Session) -> None:
    sync_session.info.pop(_AFTER_COMMIT, None)


async def notify_run_changed(session: AsyncSession, signals: Signals, run_id: str) -> None:
    """Wake streamers of `run_id` here and, on PostgreSQL, in every process, after commit."""
    if is_postgres(session):
        await session.execute(
            text("SELECT pg_notify(:channel, :run_id)"),
            {"channel": RUN_EVENTS_CHANNEL, "run_id": run_id},
        )
    after_commit(session, lambda: signals.run_changed(run_id))


async def notify_run_queued(session: AsyncSession, signals: Signals) -> None:
    if is_postgres(session):
        await session.execute(
            text("SELECT pg_notify(:channel, '')"), {"channel": RUNS_QUEUED_CHANNEL}
        )
    after_commit(session, signals.run_queued)


async def listen_postgres(database_url: str, signals: Signals) -> None:
    """Forward PostgreSQL notifications into `signals` until cancelled; reconnects on failure."""
    import psycopg

    conninfo = (
        make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f"LISTEN {RUN_EVENTS_CHANNEL}")
                await conn.execute(f"LISTEN {RUNS_QUEUED_CHANNEL}")
                # Anything may have happened while we were not listening.
                signals.run_queued()
                for run_id in list(signals._run_waiters):
                    signals.run_changed(run_id)
                async for note in conn.notifies():
                    if note.channel == RUN_EVENTS_CHANNEL:
                        signals.run_changed(note.payload)
                    else:
                        signals.run_queued()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("LISTEN connection lost; reconnecting", exc_info=True)
            await asyncio.sleep(1.0)

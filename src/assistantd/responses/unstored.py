"""Responses created with `store: false`: removed once their request has its answer, after it.

An unstored response lives in the store only while it runs (the engine executes it like any
other: its run row, items and event log). It is never shown (`repository.get` does not find it),
so removing it is housekeeping and the answer does not wait for it: the router hands the id to
the process's `Forgetter` once the answer has gone out, which removes ids in batches on a task of
its own, a batch when it is full or a moment (`linger`) after its first id came in. One write
transaction for many responses rather than one each: a removal right after each answer would
only move its cost onto the next request (SQLite has one writer). Ids it had not removed when
the process stopped, or could not remove, are left to the worker's `sweep_unstored` a minute
later. A WebSocket connection keeps the unstored responses it may continue, and hands them here
when it no longer may (`responses.kept`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.responses import repository

log = logging.getLogger(__name__)

# Ids removed in one transaction at most, and how long the first waits for others.
_BATCH = 256
_LINGER_SECONDS = 1.0


class Forgetter:
    """Removes finished unstored responses off the answer's path, batching what comes in while
    a removal runs."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, linger: float = _LINGER_SECONDS
    ) -> None:
        self._sessions = sessions
        self._linger = linger
        self._pending: list[str] = []
        self._full = asyncio.Event()  # a batch is ready, or the forgetter is closing
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def forget(self, response_id: str) -> None:
        """Remove this response soon (now that its request has its answer)."""
        if self._closed:
            return  # stopping: the sweep removes it
        self._pending.append(response_id)
        if len(self._pending) >= _BATCH:
            self._full.set()
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="forget-unstored")

    async def _drain(self) -> None:
        try:
            while self._pending:
                if not self._full.is_set() and len(self._pending) < _BATCH:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._full.wait(), self._linger)
                if not self._closed:
                    self._full.clear()
                batch, self._pending = self._pending[:_BATCH], self._pending[_BATCH:]
                try:
                    async with self._sessions() as session:
                        await repository.delete_unstored(session, batch)
                        await session.commit()
                except Exception:
                    log.exception("removing %d unstored responses failed", len(batch))
        finally:
            self._task = None

    async def aclose(self) -> None:
        """Remove what is pending now (a process that stops takes nothing new)."""
        self._closed = True
        self._full.set()
        if self._task is not None:
            await self._task

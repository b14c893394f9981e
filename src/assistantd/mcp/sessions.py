"""MCP client sessions kept open between exchanges with the same server.

Opening a session costs the MCP handshake (`initialize`, then `notifications/initialized`)
before the request itself, and closing it another request. A session is kept by what it was
opened with (the project, the URL and the headers sent, the host policy), so the calls of a
response, and of the responses that follow it (a chain, a WebSocket connection), reuse it
while it is in use and for `IDLE_SECONDS` after. A project never shares another's sessions.

Each session is owned by a task of its own, which opens it, holds it and closes it (the
transports' task groups must be entered and left by one task); callers borrow it. A session
whose exchange failed or was cut short is closed rather than lent again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from mcp.client.session import ClientSession

# How long an unused session stays open; how many are kept at most.
IDLE_SECONDS = 30.0
MAX_SESSIONS = 32

Opener = Callable[[], AbstractAsyncContextManager[ClientSession]]


@dataclass(eq=False)
class Lease:
    """One open session, and who borrows it."""

    key: Any
    session: ClientSession
    used: float
    busy: int = 0
    lent: int = 0  # times borrowed
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    def close(self) -> None:
        self.closing.set()


class Pool:
    """The open sessions of one event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._open: dict[Any, Lease] = {}
        self._opening: dict[Any, asyncio.Future[Lease]] = {}
        self._owners: set[asyncio.Task[None]] = set()

    async def borrow(self, key: Any, opener: Opener, open_timeout: float) -> Lease:
        """The session kept under `key`, else one opened now (within `open_timeout`); give it
        back with `give_back`."""
        lease = self._open.get(key)
        if lease is None or lease.closing.is_set():
            pending = self._opening.get(key)
            if pending is None:
                pending = self.loop.create_future()
                self._opening[key] = pending
                owner = asyncio.create_task(self._own(key, opener, open_timeout, pending))
                self._owners.add(owner)
                owner.add_done_callback(self._owners.discard)
            lease = await asyncio.shield(pending)
        lease.busy += 1
        lease.lent += 1
        lease.used = self.loop.time()
        return lease

    def give_back(self, lease: Lease, *, broken: bool = False) -> None:
        lease.busy -= 1
        lease.used = self.loop.time()
        if broken:
            lease.close()
            if self._open.get(lease.key) is lease:
                del self._open[lease.key]
        self._trim()

    def _trim(self) -> None:
        idle = sorted((lease.used, id(lease), lease) for lease in self._open.values())
        extra = len(self._open) - MAX_SESSIONS
        for _, _, lease in idle:
            if extra <= 0:
                return
            if lease.busy == 0:
                lease.close()
                del self._open[lease.key]
                extra -= 1

    async def _own(
        self, key: Any, opener: Opener, open_timeout: float, ready: asyncio.Future[Lease]
    ) -> None:
        lease: Lease | None = None
        try:
            async with asyncio.timeout(open_timeout) as opening:
                async with opener() as session:
                    opening.reschedule(None)
                    lease = Lease(key, session, self.loop.time())
                    self._open[key] = lease
                    del self._opening[key]
                    ready.set_result(lease)
                    await self._hold(lease)
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            if self._opening.get(key) is ready:
                del self._opening[key]
            if lease is not None and self._open.get(key) is lease:
                del self._open[key]

    async def _hold(self, lease: Lease) -> None:
        """Until the session is closed, or has been idle `IDLE_SECONDS`."""
        while not lease.closing.is_set():
            left = lease.used + IDLE_SECONDS - self.loop.time()
            if lease.busy == 0 and left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(left, 1.0)):
                    await lease.closing.wait()


_pool: Pool | None = None


def pool() -> Pool:
    """This event loop's pool (sessions belong to the loop that opened them)."""
    global _pool
    if _pool is None or _pool.loop is not asyncio.get_running_loop():
        _pool = Pool()
    return _pool

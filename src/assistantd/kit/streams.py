"""A project's open event streams (SSE responses and WebSocket connections), up to
`ASSISTANTD_PROJECT_MAX_STREAMS`: one more is OpenAI's 429.

A stream holds a slot from before the request that opens it does anything (so a refused one
creates nothing) until it ends. A slot whose stream is never sent (the request failed after
the handler) is given back when nothing refers to it any more.

`StreamSlots` counts the streams of this process, which is all of them on SQLite (one API
process); on PostgreSQL `streams.shared.SharedStreamSlots` counts them in the database, across
every API process. Taking a slot here never waits: `take` is a coroutine only so that both
have one shape.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from types import TracebackType

from assistantd.errors import ProjectLimitError

# Seconds a refused client is told to wait: a slot frees when any of its streams ends.
RETRY_AFTER_SECONDS = 1


class StreamSlot:
    """One open stream's place; `release` (or losing the last reference) gives it back."""

    __slots__ = ("__weakref__", "_release")

    def __init__(self, give_back: Callable[[str], None], key: str) -> None:
        self._release = weakref.finalize(self, give_back, key)

    def release(self) -> None:
        self._release()  # once: a finalizer runs at most once


class Opening:
    """`async with slots.opening(project, wanted) as slot`: a slot (None unless `wanted`) for a
    stream the block opens, given back if the block fails; otherwise the block hands it to the
    stream's response."""

    __slots__ = ("_project", "_slot", "_slots", "_wanted")

    def __init__(self, slots: StreamSlots, project: str, wanted: bool) -> None:
        self._slots, self._project, self._wanted = slots, project, wanted
        self._slot: StreamSlot | None = None

    async def __aenter__(self) -> StreamSlot | None:
        if self._wanted:
            self._slot = await self._slots.take(self._project)
        return self._slot

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if error is not None and self._slot is not None:
            self._slot.release()


class StreamSlots:
    """The open streams of this process, counted in it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  # 0: no limit
        self._open: dict[str, int] = {}

    async def take(self, project: str) -> StreamSlot:
        """A slot for one more stream of `project`, or OpenAI's 429 when it holds all of its."""
        held = self._open.get(project, 0)
        if self.limit and held >= self.limit:
            raise refusal(project, self.limit, held)
        self._open[project] = held + 1
        return StreamSlot(self._release, project)

    def opening(self, project: str, wanted: bool = True) -> Opening:
        return Opening(self, project, wanted)

    async def aclose(self) -> None:
        """Nothing to give back: the count ends with the process."""

    def _release(self, project: str) -> None:
        held = self._open.get(project, 0) - 1
        if held > 0:
            self._open[project] = held
        else:
            self._open.pop(project, None)


def refusal(project: str, limit: int, used: int) -> ProjectLimitError:
    """OpenAI's 429 for one stream more than `project`'s `limit`."""
    return ProjectLimitError(
        f"Rate limit reached for project '{project}' on open streams: Limit {limit}, Used "
        f"{used}, Requested 1. Please try again in {RETRY_AFTER_SECONDS}s, once one of them "
        "has ended.",
        retry_after=RETRY_AFTER_SECONDS,
    )

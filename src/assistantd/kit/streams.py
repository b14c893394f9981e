"""A project's open event streams in this process (SSE responses and WebSocket connections),
up to `ASSISTANTD_PROJECT_MAX_STREAMS`: one more is OpenAI's 429.

A stream holds a slot from before the request that opens it does anything (so a refused one
creates nothing) until it ends. A slot whose stream is never sent (the request failed after
the handler) is given back when nothing refers to it any more.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator

from assistantd.errors import ProjectLimitError

# Seconds a refused client is told to wait: a slot frees when any of its streams ends.
RETRY_AFTER_SECONDS = 1


class StreamSlot:
    """One open stream's place; `release` (or losing the last reference) gives it back."""

    __slots__ = ("__weakref__", "_release")

    def __init__(self, slots: StreamSlots, project: str) -> None:
        self._release = weakref.finalize(self, slots._release, project)

    def release(self) -> None:
        self._release()  # once: a finalizer runs at most once


class StreamSlots:
    def __init__(self, limit: int) -> None:
        self.limit = limit  # 0: no limit
        self._open: dict[str, int] = {}

    def open_count(self, project: str) -> int:
        return self._open.get(project, 0)

    def take(self, project: str) -> StreamSlot:
        """A slot for one more stream of `project`, or OpenAI's 429 when it holds all of its."""
        held = self._open.get(project, 0)
        if self.limit and held >= self.limit:
            raise ProjectLimitError(
                f"Rate limit reached for project '{project}' on open streams: Limit "
                f"{self.limit}, Used {held}, Requested 1. Please try again in "
                f"{RETRY_AFTER_SECONDS}s, once one of them has ended.",
                retry_after=RETRY_AFTER_SECONDS,
            )
        self._open[project] = held + 1
        return StreamSlot(self, project)

    @contextlib.contextmanager
    def opening(self, project: str, wanted: bool = True) -> Iterator[StreamSlot | None]:
        """A slot (None unless `wanted`) for a stream the block opens: given back if the block
        fails; otherwise the block hands it to the stream's response."""
        slot = self.take(project) if wanted else None
        try:
            yield slot
        except BaseException:
            if slot is not None:
                slot.release()
            raise

    def _release(self, project: str) -> None:
        held = self._open.get(project, 0) - 1
        if held > 0:
            self._open[project] = held
        else:
            self._open.pop(project, None)

"""Server-sent events encoding."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from assistantd.kit.streams import StreamSlot

DONE = "event: done\ndata: [DONE]\n\n"


def encode_event(name: str, data: str, event_id: int | None = None) -> str:
    """One SSE frame; `data` is already one-line JSON."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {data}\n\n"


class EventStreamResponse(StreamingResponse):
    """`text/event-stream` from an async iterator of frames, sent by the request's own task.

    Starlette's StreamingResponse, under an ASGI 2.3 server such as uvicorn, sends from a new
    task in a task group (a loop turn and more before the first frame). Here a small task only
    watches for the client leaving, and stops the stream when it does, as Starlette's does.
    `slot`, the project's place for an open stream (see `kit.streams`), is given back when the
    stream ends. `then` is called once every frame has been sent (not when the client left).
    """

    def __init__(
        self,
        frames: AsyncIterator[str],
        slot: StreamSlot | None = None,
        *,
        then: Callable[[], None] | None = None,
    ) -> None:
        self._slot = slot
        self._then = then
        super().__init__(
            frames,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        left = False

        async def watch() -> None:
            nonlocal left
            while (await receive())["type"] != "http.disconnect":
                pass
            left = True
            task.cancel()

        watcher = asyncio.create_task(watch())
        try:
            await self.stream_response(send)
            if self._then is not None:
                self._then()
        except asyncio.CancelledError:
            if not left:
                raise
            task.uncancel()  # the client left: the stream is over, nothing failed
        finally:
            watcher.cancel()
            if self._slot is not None:
                self._slot.release()

"""Server-sent events encoding."""

from __future__ import annotations

DONE = "event: done\ndata: [DONE]\n\n"


def encode_event(name: str, data: str, event_id: int | None = None) -> str:
    """One SSE frame; `data` is already one-line JSON."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {data}\n\n"

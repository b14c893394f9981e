"""An incremental server-sent events decoder (WHATWG "event stream interpretation").

Fed one line at a time (line endings already removed, as `httpx.Response.aiter_lines` gives
them), it returns each event when its terminating blank line arrives, so events reach the caller
as soon as the bytes do.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSentEvent:
    event: str  # "message" unless the stream named it
    data: str


class SSEDecoder:
    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> ServerSentEvent | None:
        """Take one line; return the event it completes, if any."""
        if not line:
            return self.flush()
        if line.startswith(":"):  # a comment (keep-alive)
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        # `id` and `retry` mean nothing to a one-shot request; unknown fields are ignored.
        return None

    def flush(self) -> ServerSentEvent | None:
        """The pending event, if the stream ended without its blank line."""
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(self._event or "message", "\n".join(self._data))
        self._event, self._data = "", []
        return event

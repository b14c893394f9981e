"""Parse what the server returns with the openai SDK's own types, strictly: the SDK's models
accept unknown keys (and keep them as extras), so a misspelt or invented field would pass a plain
`model_validate`; these helpers also refuse any extra key, at any depth."""

from __future__ import annotations

from typing import Any

from openai import BaseModel
from openai.types.responses import Response, ResponsesServerEvent, ResponseStreamEvent
from pydantic import TypeAdapter

_EVENTS: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
# OpenAI sends these, and the SDK's types leave them out: delta padding (`stream_options`), and
# the response's `store`, `presence_penalty` and `frequency_penalty` (the last two also required
# by the Open Responses specification).
_UNMODELLED = frozenset({"obfuscation", "store", "presence_penalty", "frequency_penalty"})


def _no_extras(value: Any, where: str, known: dict[str, set[str]] | None = None) -> None:
    """No key beyond the SDK's type's, but `_UNMODELLED` and `known[type name]`."""
    if isinstance(value, BaseModel):
        allowed = (known or {}).get(type(value).__name__, set())
        extra = set(value.model_extra or {}) - _UNMODELLED - allowed
        assert not extra, f"{where}: keys the SDK does not know: {sorted(extra)}"
        for name in type(value).model_fields:
            _no_extras(getattr(value, name), f"{where}.{name}", known)
    elif isinstance(value, list | tuple):
        for index, entry in enumerate(value):
            _no_extras(entry, f"{where}[{index}]", known)


def response(data: dict[str, Any]) -> Response:
    parsed = Response.model_validate(data)
    _no_extras(parsed, "response")
    return parsed


def event(data: dict[str, Any]) -> ResponseStreamEvent:
    parsed = _EVENTS.validate_python(data)
    assert parsed.type == data["type"], f"parsed {data['type']} as {parsed.type}"
    _no_extras(parsed, data["type"])
    return parsed


_SOCKET_EVENTS: TypeAdapter[ResponsesServerEvent] = TypeAdapter(ResponsesServerEvent)


# What the reference (`responses-openapi.json`) has and the SDK's WebSocket types leave out: the
# function's name on `function_call_arguments.done`, and the status of custom tool calls and
# outputs (the reference's item resources require it).
_SOCKET_KNOWN = {
    "ResponseFunctionCallArgumentsWsDone": {"name"},
    "ResponseCustomToolCall": {"status"},
    "ResponseCustomToolCallOutput": {"status"},
}


def socket_event(data: dict[str, Any]) -> ResponsesServerEvent:
    """A Responses WebSocket server event (stream events with their lane, `error`, steering)."""
    parsed = _SOCKET_EVENTS.validate_python(data)
    assert parsed.type == data["type"], f"parsed {data['type']} as {parsed.type}"
    _no_extras(parsed, data["type"], _SOCKET_KNOWN)
    return parsed

"""Helpers for streaming tests: an event handler that records every callback, raw SSE frames,
and the canonical event sequences of the spec (CHECKLIST §7)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from openai import AssistantEventHandler
from openai.types.beta import AssistantStreamEvent
from openai.types.beta.threads import (
    Message,
    MessageDelta,
    Text,
    TextDelta,
)
from openai.types.beta.threads.runs import RunStep, RunStepDelta, ToolCall, ToolCallDelta

RUN_START = ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
STEP_START = ["thread.run.step.created", "thread.run.step.in_progress"]
MESSAGE_START = ["thread.message.created", "thread.message.in_progress"]

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def text_run(deltas: int, *, end: str = "thread.run.completed") -> list[str]:
    """A run whose one model turn streams `deltas` text chunks."""
    return [*RUN_START, *message_turn(deltas), end]


def message_turn(deltas: int) -> list[str]:
    return [
        *STEP_START,
        *MESSAGE_START,
        *["thread.message.delta"] * deltas,
        "thread.message.completed",
        "thread.run.step.completed",
    ]


def function_call_run(step_deltas: int) -> list[str]:
    return [
        *RUN_START,
        *STEP_START,
        *["thread.run.step.delta"] * step_deltas,
        "thread.run.requires_action",
    ]


def after_tool_outputs(deltas: int) -> list[str]:
    return [
        "thread.run.step.completed",
        "thread.run.queued",
        "thread.run.in_progress",
        *message_turn(deltas),
        "thread.run.completed",
    ]


class Recorder(AssistantEventHandler):
    """Records every callback of the SDK's event handler, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, ...]] = []
        self.events: list[AssistantStreamEvent] = []

    @property
    def names(self) -> list[str]:
        return [event.event for event in self.events]

    def callbacks(self, *, events: bool = False) -> list[tuple[Any, ...]]:
        """The callbacks other than `on_event` (unless asked)."""
        return [c for c in self.calls if events or c[0] != "event"]

    def on_event(self, event: AssistantStreamEvent) -> None:
        self.events.append(event)
        self.calls.append(("event", event.event))

    def on_end(self) -> None:
        self.calls.append(("end",))

    def on_exception(self, exception: Exception) -> None:
        self.calls.append(("exception", type(exception).__name__))

    def on_run_step_created(self, run_step: RunStep) -> None:
        self.calls.append(("run_step_created", run_step.id, run_step.type, run_step.status))

    def on_run_step_delta(self, delta: RunStepDelta, snapshot: RunStep) -> None:
        self.calls.append(("run_step_delta", snapshot.id))

    def on_run_step_done(self, run_step: RunStep) -> None:
        self.calls.append(("run_step_done", run_step.id, run_step.status))

    def on_tool_call_created(self, tool_call: ToolCall) -> None:
        assert tool_call.type == "function"
        self.calls.append(("tool_call_created", tool_call.id, tool_call.function.name))

    def on_tool_call_delta(self, delta: ToolCallDelta, snapshot: ToolCall) -> None:
        assert delta.type == "function"
        assert delta.function is not None
        self.calls.append(("tool_call_delta", delta.index, delta.function.arguments))

    def on_tool_call_done(self, tool_call: ToolCall) -> None:
        assert tool_call.type == "function"
        self.calls.append(("tool_call_done", tool_call.id, tool_call.function.arguments))

    def on_message_created(self, message: Message) -> None:
        self.calls.append(("message_created", message.id, message.status))

    def on_message_delta(self, delta: MessageDelta, snapshot: Message) -> None:
        self.calls.append(("message_delta", snapshot.id))

    def on_message_done(self, message: Message) -> None:
        self.calls.append(("message_done", message.id, message.status))

    def on_text_created(self, text: Text) -> None:
        self.calls.append(("text_created",))

    def on_text_delta(self, delta: TextDelta, snapshot: Text) -> None:
        self.calls.append(("text_delta", delta.value, snapshot.value))

    def on_text_done(self, text: Text) -> None:
        self.calls.append(("text_done", text.value))


def text_callbacks(message_id: str, chunks: list[str], step_id: str) -> list[tuple[Any, ...]]:
    """What an `AssistantEventHandler` hears for one message step streaming `chunks`."""
    calls: list[tuple[Any, ...]] = [
        ("run_step_created", step_id, "message_creation", "in_progress"),
        ("message_created", message_id, "in_progress"),
    ]
    so_far = ""
    for i, chunk in enumerate(chunks):
        so_far += chunk
        if i == 0:
            calls.append(("text_created",))
        calls += [("text_delta", chunk, so_far), ("message_delta", message_id)]
    calls += [
        ("text_done", so_far),
        ("message_done", message_id, "completed"),
        ("run_step_done", step_id, "completed"),
    ]
    return calls


# --- raw SSE -------------------------------------------------------------------------------------


@dataclass
class Frame:
    event: str
    data: str
    id: int | None

    def json(self) -> Any:
        return json.loads(self.data)


def parse_frames(lines: Iterator[str]) -> Iterator[Frame]:
    event, data, seq = "", "", None
    for line in lines:
        if line == "":
            if event or data:
                yield Frame(event, data, seq)
            event, data, seq = "", "", None
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line.startswith("id:"):
            seq = int(line[3:].strip())


def raw_stream(
    http: httpx.Client, method: str, path: str, body: dict[str, Any] | None = None
) -> list[Frame]:
    """Every frame of one SSE response, read to the end."""
    with http.stream(method, path, json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(parse_frames(response.iter_lines()))


def check_deltas_follow_snapshots(frames: list[Frame]) -> None:
    """Every delta comes after the `created` of its object, with the right object and ids."""
    messages: set[str] = set()
    steps: dict[str, Any] = {}
    for frame in frames:
        if frame.event in ("done", "error"):
            continue
        data = frame.json()
        if frame.event == "thread.message.created":
            messages.add(data["id"])
        elif frame.event == "thread.run.step.created":
            steps[data["id"]] = data
        elif frame.event == "thread.message.delta":
            assert data["object"] == "thread.message.delta"
            assert data["id"] in messages, f"message delta before its message: {data}"
            for part in data["delta"]["content"]:
                assert isinstance(part["index"], int)
        elif frame.event == "thread.run.step.delta":
            assert data["object"] == "thread.run.step.delta"
            assert data["id"] in steps, f"step delta before its step: {data}"
            details = data["delta"]["step_details"]
            assert details["type"] == steps[data["id"]]["step_details"]["type"] == "tool_calls"
            for call in details["tool_calls"]:
                assert isinstance(call["index"], int)

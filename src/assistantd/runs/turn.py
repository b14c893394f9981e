"""One model call of a run: stream the backend's answer into a message step and/or a tool step.

Rows are created the moment their first token arrives, and every token is emitted as a delta
event, so streaming clients see the answer as the backend produces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assistantd.backends.chat import ChatRequest, Finish, TextDelta, ToolCallDelta, Usage
from assistantd.backends.routing import ModelRoute
from assistantd.backends.tokens import estimate_tokens
from assistantd.db.models import Message, Run, RunStep
from assistantd.kit.ids import Prefix, created_at_of, new_id
from assistantd.messages import service as messages
from assistantd.runs import render
from assistantd.runs.deps import RunDeps
from assistantd.runs.events import EventWriter


@dataclass
class PendingCall:
    id: str
    name: str = ""
    arguments: str = ""


@dataclass
class TurnResult:
    message: Message | None = None
    message_step: RunStep | None = None
    text: str = ""
    tool_step: RunStep | None = None
    calls: list[PendingCall] = field(default_factory=list)
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_reported: bool = False


def _step(run: Run, step_type: str, details: dict[str, Any]) -> RunStep:
    step_id = new_id(Prefix.STEP)
    return RunStep(
        id=step_id,
        project=run.project,
        created_at=created_at_of(step_id),
        run_id=run.id,
        thread_id=run.thread_id,
        assistant_id=run.assistant_id,
        type=step_type,
        status="in_progress",
        step_details=details,
        metadata_={},
    )


class Turn:
    """Streams one chat completion into rows and events."""

    def __init__(
        self,
        deps: RunDeps,
        run: Run,
        writer: EventWriter,
        *,
        leading_parts: list[dict[str, Any]] | None = None,
    ) -> None:
        self.deps = deps
        self.run = run
        self.writer = writer
        # Content a server tool produced for the next message (images), placed before the text.
        self.leading_parts = list(leading_parts or [])
        self.result = TurnResult()
        self._by_index: dict[int, PendingCall] = {}

    async def stream(self, route: ModelRoute, request: ChatRequest) -> TurnResult:
        async for event in self.deps.backend.stream(route, request):
            if isinstance(event, TextDelta):
                if event.text:
                    await self._text(event.text)
            elif isinstance(event, ToolCallDelta):
                await self._tool_delta(event)
            elif isinstance(event, Finish):
                self.result.finish_reason = event.reason
            elif isinstance(event, Usage):
                self.result.prompt_tokens = event.prompt_tokens
                self.result.completion_tokens = event.completion_tokens
                self.result.usage_reported = True
        if not self.result.usage_reported:
            produced = self.result.text + "".join(c.name + c.arguments for c in self.result.calls)
            self.result.completion_tokens = estimate_tokens(produced)
        return self.result

    async def _text(self, text: str) -> None:
        result = self.result
        if result.message is None:
            # The message and its step are stored with their `created` events by the event
            # store, in the background: the model's stream does not wait for the database.
            message = messages.new_message(
                self.run.project,
                self.run.thread_id,
                role="assistant",
                content_parts=self.leading_parts,
                assistant_id=self.run.assistant_id,
                run_id=self.run.id,
                status="in_progress",
            )
            step = _step(
                self.run,
                "message_creation",
                {"type": "message_creation", "message_creation": {"message_id": message.id}},
            )
            result.message, result.message_step = message, step
            wire_step = render.step(step)
            wire_message = messages.render(message)
            self.writer.emit("thread.run.step.created", wire_step, rows=[message, step])
            self.writer.emit("thread.run.step.in_progress", wire_step)
            self.writer.emit("thread.message.created", wire_message)
            self.writer.emit("thread.message.in_progress", wire_message)
            for index, part in enumerate(self.leading_parts):
                self._message_delta({"index": index, **part})
        result.text += text
        assert result.message is not None
        self._message_delta(
            {
                "index": len(self.leading_parts),
                "type": "text",
                "text": {"value": text, "annotations": []},
            }
        )

    def _message_delta(self, part: dict[str, Any]) -> None:
        assert self.result.message is not None
        self.writer.emit(
            "thread.message.delta",
            {
                "id": self.result.message.id,
                "object": "thread.message.delta",
                "delta": {"content": [part]},
            },
        )

    async def _tool_delta(self, delta: ToolCallDelta) -> None:
        result = self.result
        if result.tool_step is None:
            step = _step(self.run, "tool_calls", {"type": "tool_calls", "tool_calls": []})
            result.tool_step = step
            wire = render.step(step)
            self.writer.emit("thread.run.step.created", wire, rows=[step])  # stored with it
            self.writer.emit("thread.run.step.in_progress", wire)
        call = self._by_index.get(delta.index)
        is_new = call is None
        if call is None:
            call = PendingCall(id=new_id(Prefix.CALL))
            self._by_index[delta.index] = call
            result.calls.append(call)
        if delta.name:
            call.name += delta.name
        fragment = delta.arguments or ""
        call.arguments += fragment
        position = result.calls.index(call)
        tool = self.deps.tools.by_function_name(call.name)
        if is_new:
            if tool is not None:
                self._step_delta({"index": position, **tool.initial_details(call.id)})
            else:
                self._step_delta(
                    {
                        "index": position,
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": "", "output": None},
                    }
                )
        if fragment and tool is None:
            self._step_delta(
                {"index": position, "type": "function", "function": {"arguments": fragment}}
            )

    def _step_delta(self, tool_call: dict[str, Any]) -> None:
        assert self.result.tool_step is not None
        self.writer.emit(
            "thread.run.step.delta",
            {
                "id": self.result.tool_step.id,
                "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": [tool_call]}},
            },
        )

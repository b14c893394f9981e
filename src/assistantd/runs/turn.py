"""One model call of a run or response: stream the backend's answer into items.

A reasoning item is created the moment the first reasoning arrives (on a surface that shows
reasoning; the Assistants API does not) and closed when the answer starts; a message item the
moment the first text arrives, a call item the moment its tool call starts. Each token goes to
the execution's recorder, which emits it in its API's words (`response.reasoning_text.delta`,
`thread.message.delta`, `response.output_text.delta`...), so streaming clients see the answer as
the backend produces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from assistantd.backends.chat import (
    ChatRequest,
    Finish,
    LogProb,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from assistantd.backends.constrained import as_call
from assistantd.backends.routing import ModelRoute
from assistantd.backends.tokens import estimate_tokens
from assistantd.db.models import Item, Run
from assistantd.items import client_calls
from assistantd.items.content import stored_text
from assistantd.items.kinds import SERVER_CALL_TYPE, new_item
from assistantd.kit.ids import Prefix, new_id
from assistantd.messages import service as messages
from assistantd.runs.deps import RunDeps
from assistantd.runs.recorder import Recorder
from assistantd.runs.signals import give_way
from assistantd.tools.base import ServerTool

# How often the text of a message being streamed is stored.
CHECKPOINT_SECONDS = 1.0
# For a run nobody streams (it is polled, or its request waits for the whole answer): the
# longest its text is gathered before a delta event goes out. A fast backend's burst of
# chunks then costs one event, not one per chunk.
GATHER_SECONDS = 0.05
# Loop turns a streamer needs to write a frame it was woken for.
_FIRST_TOKEN_TURNS = 3


@dataclass
class PendingCall:
    id: str  # the call id the model and the client know
    item: Item
    name: str = ""
    arguments: str = ""
    tool: ServerTool | None = None  # None: a tool the client runs
    # What client tool the function is (`tools.client`); None: a plain function.
    client: dict[str, Any] | None = None


@dataclass
class TurnResult:
    message: Item | None = None
    text: str = ""
    calls: list[PendingCall] = field(default_factory=list)
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_reported: bool = False
    reasoning: str = ""  # the turn's reasoning text, all of it
    reasoning_tokens: int = 0  # of completion_tokens: the backend's count, else an estimate
    logprobs: list[LogProb] = field(default_factory=list)  # the message's tokens, when asked


def hosted_call(definitions: list[dict[str, Any]], tool_type: str, name: str) -> bool:
    """Whether a call of `name` is one of the run's `tool_type` hosted tool: the run has that
    tool, and no function of its own by that name (a client's `web_search` function is the
    client's)."""
    functions = {d["function"]["name"] for d in definitions if d["type"] == "function"}
    return name not in functions and any(d["type"] == tool_type for d in definitions)


class Turn:
    """Streams one chat completion into items and the recorder's events."""

    def __init__(
        self,
        deps: RunDeps,
        run: Run,
        recorder: Recorder,
        client_tools: Mapping[str, dict[str, Any]] | None = None,
        *,
        creation: asyncio.Future[bool] | None = None,
    ) -> None:
        """`creation`, for a run started before its creation committed: resolves when that
        has ended (see `RunExecutor`)."""
        self.deps = deps
        self._creation = creation
        self.run = run
        self.recorder = recorder
        # By the function name a client tool is offered under: what the tool is.
        self.client_tools = client_tools or {}
        self.result = TurnResult()
        self._by_index: dict[int, PendingCall] = {}
        self._saved_at = time.monotonic()
        self._unsent = ""  # text received and not yet in a delta event (gathering)
        self._unsent_logprobs: list[LogProb] = []
        self._send_timer: asyncio.TimerHandle | None = None
        self._keeps_reasoning = recorder.keeps_reasoning
        self._thought: Item | None = None  # the reasoning item being streamed
        self._thought_text = ""
        self._thought_unsent = ""  # gathering: reasoning not yet in a delta event
        # Functions of hosted tools with many (MCP): name -> (item type, the item's first data).
        self.hosted: dict[str, tuple[str, dict[str, Any]]] = {}

    async def stream(
        self,
        route: ModelRoute,
        request: ChatRequest,
        *,
        gather: bool = False,
    ) -> TurnResult:
        """Stream the model's answer. With `gather` (nobody streams the run), text goes out
        in one delta event per `GATHER_SECONDS` at most."""
        reported_reasoning: int | None = None
        try:
            stream = self.deps.backend.stream(route, request)
            if request.constrained_call is not None:
                stream = as_call(stream, request.constrained_call)
            async with aclosing(stream) as events:
                async for event in events:
                    if isinstance(event, ReasoningDelta):
                        # No turns given away here: what the streams wait for most is the
                        # answer, which a fast backend sends in the same burst.
                        if event.text:
                            self._reason(event.text, gather)
                        continue
                    if self._thought is not None:
                        self._close_thought()  # the answer starts: the reasoning is complete
                    if isinstance(event, TextDelta):
                        if not event.text and not event.logprobs:
                            continue
                        if gather:
                            self._gather(event.text, event.logprobs)
                            continue
                        first = self.result.message is None
                        self.text(event.text, event.logprobs)
                        if first:
                            await self._first_token_out()
                        continue
                    self._send_gathered()  # the text so far comes before what follows it
                    if isinstance(event, ToolCallDelta):
                        self._tool_delta(event)
                    elif isinstance(event, Finish):
                        self.result.finish_reason = event.reason
                    elif isinstance(event, Usage):
                        self.result.prompt_tokens = event.prompt_tokens
                        self.result.completion_tokens = event.completion_tokens
                        self.result.usage_reported = True
                        reported_reasoning = event.reasoning_tokens
                if self._thought is not None:
                    self._close_thought()
                self._send_gathered()
        finally:
            # A turn that fails or is stopped sends nothing more; what it gathered is in
            # its result (the message closes with it).
            if self._send_timer is not None:
                self._send_timer.cancel()
        result = self.result
        if not result.usage_reported:
            produced = result.reasoning + result.text
            produced += "".join(c.name + c.arguments for c in result.calls)
            result.completion_tokens = estimate_tokens(produced)
        if reported_reasoning:
            result.reasoning_tokens = reported_reasoning
        elif result.reasoning:  # a backend that does not count them (or says 0) reasoned
            result.reasoning_tokens = estimate_tokens(result.reasoning)
        return result

    async def _first_token_out(self) -> None:
        """Let the streams the first token woke send it before the rest of a burst is handled
        (a fast backend sends many chunks in one read). A run whose creation has not committed
        has no stream sending yet: the rest of the burst waits for the commit too, which then
        comes sooner (the creation shares this event loop), and so does the first token."""
        creation = self._creation
        if creation is not None and not creation.done():
            await asyncio.wait((creation,))  # never cancels the creation's future
            await give_way()  # the streams open now: they give this run a few turns first
            return
        await give_way(_FIRST_TOKEN_TURNS)

    def _reason(self, fragment: str, gather: bool) -> None:
        """A fragment of the model's reasoning."""
        self.result.reasoning += fragment
        if not self._keeps_reasoning:
            return
        thought = self._thought
        if thought is None:
            # Stored with its first event, as a message is (see `_receive`).
            thought = self._thought = new_item(
                self.run.project,
                "reasoning",
                thread_id=self.recorder.items_thread_id,
                status="in_progress",
                run_id=self.run.id,
                data={"summary": [], "content": []},
            )
            self.recorder.reasoning_started(thought)
        self._thought_text += fragment
        if gather:
            self._thought_unsent += fragment
            self._send_later()
            return
        self.recorder.reasoning_text(thought, fragment)

    def open_reasoning(self) -> dict[str, str]:
        """The reasoning item still streaming (a turn stopped in its middle), with its text."""
        return {} if self._thought is None else {self._thought.id: self._thought_text}

    def _close_thought(self) -> None:
        thought, self._thought = self._thought, None
        assert thought is not None
        if self._thought_unsent:
            self.recorder.reasoning_text(thought, self._thought_unsent)
            self._thought_unsent = ""
        text, self._thought_text = self._thought_text, ""
        self.recorder.reasoning_done(thought, text)

    def text(self, fragment: str, logprobs: list[LogProb] | None = None) -> None:
        """A fragment of the message's text, in a delta event now."""
        self._receive(fragment, logprobs)
        self._send(fragment, logprobs)

    def _gather(self, fragment: str, logprobs: list[LogProb] | None) -> None:
        """A fragment of the message's text, in the turn's result at once (what a cancel or a
        hand-back keeps) and in a delta event with the fragments that follow it."""
        self._receive(fragment, logprobs)
        self._unsent += fragment
        if logprobs:
            self._unsent_logprobs.extend(logprobs)
        self._send_later()

    def _send_later(self) -> None:
        if self._send_timer is None:  # a backend that pauses does not keep it back
            loop = asyncio.get_running_loop()
            self._send_timer = loop.call_later(GATHER_SECONDS, self._send_on_time)

    def _send_on_time(self) -> None:
        self._send_timer = None
        # A writer that cannot store (its lease lost, say) keeps the error: the turn meets it
        # with its next event.
        with contextlib.suppress(Exception):
            self._send_gathered()

    def _send_gathered(self) -> None:
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        if self._thought_unsent and self._thought is not None:
            fragment, self._thought_unsent = self._thought_unsent, ""
            self.recorder.reasoning_text(self._thought, fragment)
        if self._unsent or self._unsent_logprobs:
            fragment, self._unsent = self._unsent, ""
            logprobs, self._unsent_logprobs = self._unsent_logprobs, []
            self._send(fragment, logprobs)

    def _receive(self, fragment: str, logprobs: list[LogProb] | None) -> None:
        result = self.result
        if result.message is None:
            # The item is stored with its first event by the event store, in the background:
            # the model's stream does not wait for the database.
            result.message = messages.new_message(
                self.run.project,
                self.recorder.items_thread_id,
                role="assistant",
                content_parts=[],
                assistant_id=self.run.assistant_id,
                run_id=self.run.id,
                status="in_progress",
            )
            self.recorder.message_started(result.message)
        result.text += fragment
        if logprobs:
            result.logprobs.extend(logprobs)

    def _send(self, fragment: str, logprobs: list[LogProb] | None = None) -> None:
        result = self.result
        assert result.message is not None
        save = None
        now = time.monotonic()
        if now - self._saved_at >= CHECKPOINT_SECONDS:
            # What a crash would otherwise lose: the message's text so far, stored with this
            # delta (a worker that takes the run over closes the message with it).
            self._saved_at = now
            leading = [part for part in result.message.content or [] if part["type"] != "text"]
            save = {"content": [*leading, stored_text(result.text)]}
        self.recorder.text(result.message, fragment, save=save, logprobs=logprobs)

    def _tool_delta(self, delta: ToolCallDelta) -> None:
        result = self.result
        call = self._by_index.get(delta.index)
        if call is None:
            name = delta.name or ""
            client = self.client_tools.get(name)
            tool = None if client is not None else self.deps.tools.by_function_name(name)
            if tool is not None and not hosted_call(self.run.tools, tool.type, name):
                tool = None  # the client's own function of that name (or a tool not given)
            if tool is not None:
                kind = SERVER_CALL_TYPE[tool.type]
            else:
                kind = client_calls.CALL_TYPE[client["kind"]] if client else "function_call"
            call_id = new_id(Prefix.CALL)
            data: dict[str, Any] = client_calls.started_data(client, name) if tool is None else {}
            if tool is not None and tool.type == "mcp":
                if name in self.hosted:
                    kind, first = self.hosted[name]
                    data = dict(first)
                else:  # not a function of this turn: the model reads that it is not a tool
                    tool, kind = None, "function_call"
                    data = client_calls.started_data(None, name)
            item = new_item(
                self.run.project,
                kind,
                thread_id=self.recorder.items_thread_id,
                status="in_progress",
                run_id=self.run.id,
                call_id=call_id,
                data=data,
            )
            call = PendingCall(id=call_id, item=item, name=name, tool=tool, client=client)
            self._by_index[delta.index] = call
            result.calls.append(call)
            self.recorder.call_started(call, len(result.calls) - 1)
        elif delta.name:
            call.name += delta.name
        fragment = delta.arguments or ""
        if fragment:
            call.arguments += fragment
            self.recorder.call_arguments(call, result.calls.index(call), fragment)

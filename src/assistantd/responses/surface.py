"""The Responses API's view of an execution: output items and `response.*` events.

Each event's payload has a `sequence_number` slot the event log fills with its position (from
0). Output items are numbered (`output_index`) in the order they start; the final
`response.completed` (or `.failed`, `.incomplete`, `.cancelled`) event carries the whole
response.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.backends.logprobs import event_logprobs
from assistantd.db.models import Item, Run
from assistantd.items import reasoning
from assistantd.items import render as items
from assistantd.responses import render
from assistantd.responses.client_events import ClientCallEvents
from assistantd.runs import finish
from assistantd.runs.deps import RunDeps
from assistantd.runs.events import EventWriter, Payload
from assistantd.runs.recorder import CallOutcome, Events
from assistantd.runs.turn import PendingCall
from assistantd.sandbox.code_stream import CodeStream
from assistantd.sandbox.tool import parse_code
from assistantd.tools.base import ToolResult

# Delta padding (`obfuscation`) hides token lengths from whoever watches the traffic's sizes,
# not from the client: a generator seeded from the OS, without a system call per delta.
_PAD = random.Random()
_PAD_ALPHABET = string.ascii_letters + string.digits + "-_"

# Statuses after which a response's items join its conversation.
_JOINS_CONVERSATION = frozenset({"completed", "incomplete"})


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A `response.*` event payload; the event log numbers it."""
    return {"type": kind, "sequence_number": None, **fields}


def lifecycle(kind: str, wire: Any) -> tuple[str, Payload]:
    return kind, event(kind, response=wire)


class ResponseRecorder:
    waits_for_outputs: bool = False
    keeps_reasoning: bool = True
    # Its conversation gets the items only when it completes.
    items_thread_id: str | None = None

    def __init__(self, deps: RunDeps, run: Run, writer: EventWriter) -> None:
        self.deps = deps
        self.run = run
        self.writer = writer
        options = run.options or {}
        self._obfuscate = options.get("include_obfuscation", True) is not False
        self._index: dict[str, int] = {}
        self._next = 0
        self._include = frozenset(run.include or ())
        self._summary = (options.get("reasoning") or {}).get("summary")
        # Reasoning is sealed when this response shows it sealed, or may later (retrieved with
        # the include); an unstored response that did not ask never will.
        self._seals = items.ENCRYPTED_REASONING in self._include or options.get("store", True)
        self._container_id = options.get("container_id") or ""
        self._code_streams: dict[str, CodeStream] = {}
        self._client = ClientCallEvents(self._emit, self._delta_extras)

    def context_loaded(self, loaded: Sequence[Item]) -> None:
        """Output a previous attempt left counts: new items take the next indexes."""
        own = sum(1 for item in loaded if item.run_id == self.run.id)
        self._next = max(self._next, own)

    def _start(self, item: Item) -> int:
        index = self._index[item.id] = self._next
        self._next += 1
        return index

    def _emit(
        self,
        kind: str,
        rows: Sequence[Any] = (),
        update: tuple[type[Item], str, dict[str, Any]] | None = None,
        **fields: Any,
    ) -> None:
        self.writer.emit(kind, event(kind, **fields), rows=rows, update=update)

    # --- hosted items the engine makes outside a model turn (MCP tool lists, approved calls) ---

    def start_index(self, item: Item) -> int:
        """The output index of a new item of this response."""
        return self._start(item)

    def send(
        self,
        kind: str,
        rows: Sequence[Any] = (),
        update: tuple[type[Item], str, dict[str, Any]] | None = None,
        **fields: Any,
    ) -> None:
        self._emit(kind, rows=rows, update=update, **fields)

    async def store_now(self) -> None:
        """Store what was emitted (rows included) now, not after the hold."""
        async with self.writer.transaction() as session:
            await self.writer.commit(session)

    def _delta_extras(self) -> dict[str, Any]:
        if not self._obfuscate:
            return {}
        return {"obfuscation": "".join(_PAD.choices(_PAD_ALPHABET, k=_PAD.randint(1, 11)))}

    # --- while the model streams ----------------------------------------------------------------

    def reasoning_started(self, item: Item) -> None:
        index = self._start(item)
        wire = items.item(item)
        self._emit("response.output_item.added", rows=[item], output_index=index, item=wire)
        self._emit(
            "response.content_part.added",
            item_id=item.id,
            output_index=index,
            content_index=0,
            part={"type": "reasoning_text", "text": ""},
        )

    def reasoning_text(self, item: Item, fragment: str) -> None:
        self._emit(
            "response.reasoning_text.delta",
            item_id=item.id,
            output_index=self._index[item.id],
            content_index=0,
            delta=fragment,
        )

    def reasoning_done(self, item: Item, text: str) -> None:
        index = self._index[item.id]
        item.data = reasoning.data(text, self._summary, self.deps.sealer if self._seals else None)
        item.status = "completed"
        self._emit(
            "response.reasoning_text.done",
            item_id=item.id,
            output_index=index,
            content_index=0,
            text=text,
        )
        part = {"type": "reasoning_text", "text": text}
        self._emit(
            "response.content_part.done",
            item_id=item.id,
            output_index=index,
            content_index=0,
            part=part,
        )
        for number, summary in enumerate(item.data["summary"]):
            where: dict[str, Any] = {
                "item_id": item.id,
                "output_index": index,
                "summary_index": number,
            }
            empty = {"type": "summary_text", "text": ""}
            self._emit("response.reasoning_summary_part.added", **where, part=empty)
            self._emit("response.reasoning_summary_text.delta", **where, delta=summary["text"])
            self._emit("response.reasoning_summary_text.done", **where, text=summary["text"])
            self._emit("response.reasoning_summary_part.done", **where, part=summary)
        self._emit(
            "response.output_item.done",
            update=(Item, item.id, {"status": "completed", "data": item.data}),
            output_index=index,
            item=items.item(item, self._include),
        )

    def message_started(self, message: Item) -> None:
        index = self._start(message)
        self._emit(
            "response.output_item.added",
            rows=[message],
            output_index=index,
            item=items.item(message),
        )
        self._emit(
            "response.content_part.added",
            item_id=message.id,
            output_index=index,
            content_index=0,
            part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
        )

    def text(
        self,
        message: Item,
        fragment: str,
        *,
        save: dict[str, Any] | None = None,
        logprobs: list[dict[str, Any]] | None = None,
    ) -> None:
        self._emit(
            "response.output_text.delta",
            update=(Item, message.id, save) if save else None,
            item_id=message.id,
            output_index=self._index[message.id],
            content_index=0,
            delta=fragment,
            logprobs=event_logprobs(logprobs) if logprobs else [],
            **self._delta_extras(),
        )

    def call_started(self, call: PendingCall, position: int) -> None:
        item = call.item
        index = self._start(item)
        kind = item.type
        if kind == "code_interpreter_call":
            item.data = {"code": "", "container_id": self._container_id}
        elif kind == "file_search_call":
            item.data = {"queries": [], "results": None}
        elif kind == "web_search_call":
            item.data = {"action": {"type": "search"}}
        wire = items.item(item)
        self._emit("response.output_item.added", rows=[item], output_index=index, item=wire)
        if call.tool is not None and kind != "mcp_approval_request":
            self._emit(f"response.{kind}.in_progress", item_id=item.id, output_index=index)

    def call_arguments(self, call: PendingCall, position: int, fragment: str) -> None:
        index = self._index[call.item.id]
        if call.tool is None:
            self._client.arguments(call, index, fragment)
        elif call.item.type == "mcp_call":
            self._emit(
                "response.mcp_call_arguments.delta",
                item_id=call.item.id,
                output_index=index,
                delta=fragment,
                **self._delta_extras(),
            )
        elif call.item.type == "code_interpreter_call":
            code = self._code_streams.setdefault(call.id, CodeStream()).feed(fragment)
            if code:
                self._emit(
                    "response.code_interpreter_call_code.delta",
                    item_id=call.item.id,
                    output_index=index,
                    delta=code,
                    **self._delta_extras(),
                )

    # --- a compaction of the context ------------------------------------------------------------

    def compaction_started(self, item: Item) -> None:
        index = self._start(item)
        self._emit("response.output_item.added", output_index=index, item=items.item(item))

    def compaction_progress(self, item: Item) -> None:
        self._emit(
            "response.compaction.compacting", item_id=item.id, output_index=self._index[item.id]
        )

    def compaction_done(self, item: Item) -> None:
        index = self._index[item.id]
        wire = items.item(item)
        self._emit("response.output_item.done", rows=[item], output_index=index, item=wire)

    # --- after the model's turn -----------------------------------------------------------------

    def calls_streamed(self, calls: Sequence[PendingCall]) -> None:
        for call in calls:
            index = self._index[call.item.id]
            if call.item.type == "code_interpreter_call":
                code = parse_code(call.arguments) or ""
                self._emit(
                    "response.code_interpreter_call_code.done",
                    item_id=call.item.id,
                    output_index=index,
                    code=code,
                )
                self._emit(
                    "response.code_interpreter_call.interpreting",
                    item_id=call.item.id,
                    output_index=index,
                )
                continue
            if call.item.type in ("file_search_call", "web_search_call"):
                self._emit(
                    f"response.{call.item.type}.searching", item_id=call.item.id, output_index=index
                )
                continue
            if call.item.type in ("mcp_call", "mcp_approval_request"):
                call.item.data = {**(call.item.data or {}), "arguments": call.arguments}
                if call.item.type == "mcp_call":
                    self._emit(
                        "response.mcp_call_arguments.done",
                        item_id=call.item.id,
                        output_index=index,
                        arguments=call.arguments,
                    )
                else:
                    call.item.status = "completed"
                    wire = items.item(call.item)
                    self._emit("response.output_item.done", output_index=index, item=wire)
                continue
            self._client.done(call, index)
            self._emit("response.output_item.done", output_index=index, item=items.item(call.item))

    def tool_delta(self, call: PendingCall, position: int, delta: dict[str, Any]) -> None:
        pass

    def tool_done(self, call: PendingCall, position: int, result: ToolResult) -> None:
        item = call.item
        item.status = "failed" if result.failed else "completed"
        index = self._index[item.id]
        end = "failed" if result.failed and item.type == "mcp_call" else "completed"
        self._emit(f"response.{item.type}.{end}", item_id=item.id, output_index=index)
        wire = items.item(item, self._include)
        self._emit("response.output_item.done", output_index=index, item=wire)

    def pending_parts(self) -> bool:
        return False

    async def message_closed(
        self,
        session: AsyncSession,
        message: Item,
        *,
        cut_short: bool,
        usage: dict[str, int],
        owns_usage: bool,
    ) -> None:
        index = self._index[message.id]
        files = await items.filenames(session, [message])
        wire = items.item(message, self._include, files)
        part = wire["content"][-1]
        stage = self.writer.stage
        for number, annotation in enumerate(part["annotations"]):
            name = "response.output_text.annotation.added"
            stage(
                name,
                event(
                    name,
                    item_id=message.id,
                    output_index=index,
                    content_index=0,
                    annotation_index=number,
                    annotation=annotation,
                ),
            )
        stage(
            "response.output_text.done",
            event(
                "response.output_text.done",
                item_id=message.id,
                output_index=index,
                content_index=0,
                text=part["text"],
                logprobs=event_logprobs(part["logprobs"]),
            ),
        )
        stage(
            "response.content_part.done",
            event(
                "response.content_part.done",
                item_id=message.id,
                output_index=index,
                content_index=0,
                part=part,
            ),
        )
        stage(
            "response.output_item.done",
            event("response.output_item.done", output_index=index, item=wire),
        )

    async def calls_closed(
        self,
        session: AsyncSession,
        run: Run,
        outcomes: Sequence[CallOutcome],
        usage: dict[str, int],
        *,
        waiting: bool,
    ) -> None:
        pass

    def requires_action(self, run: Run) -> None:
        raise AssertionError("a response never waits for tool outputs")

    async def closing(
        self,
        session: AsyncSession,
        run: Run,
        status: str,
        closed: Sequence[Item],
        error: tuple[str, str] | None,
    ) -> None:
        for name, payload in _closed_events(closed, self._index):
            self.writer.stage(name, payload)

    async def ended(self, session: AsyncSession, run: Run) -> None:
        for name, payload in await _ending(session, run):
            self.writer.stage(name, payload)

    def requeued(self, run: Run) -> Events:
        return RESPONSES.requeued(run)


def _closed_events(closed: Sequence[Item], index: dict[str, int]) -> Events:
    name = "response.output_item.done"
    return [
        (name, event(name, output_index=index[item.id], item=items.item(item))) for item in closed
    ]


async def _indexes(session: AsyncSession, run: Run) -> dict[str, int]:
    """Each output item's `output_index`: its place among the response's output, which is
    the order the items started in."""
    return {item.id: n for n, item in enumerate(await render.output_of(session, run.id))}


async def _ending(session: AsyncSession, run: Run) -> Events:
    """A finished response's last event (with the whole response); a completed one's items
    join its conversation first."""
    if run.thread_id is not None and run.status in _JOINS_CONVERSATION:
        await session.execute(
            update(Item)
            .where(or_(Item.input_of == run.id, Item.run_id == run.id), Item.thread_id.is_(None))
            .values(thread_id=run.thread_id)
            .execution_options(synchronize_session=False)
        )
    wire = await render.full(session, run)
    return [lifecycle(f"response.{wire.status}", wire)]


class ResponseSurface:
    def recorder(self, deps: RunDeps, run: Run, writer: EventWriter) -> ResponseRecorder:
        return ResponseRecorder(deps, run, writer)

    def created(self, run: Run) -> Events:
        wire = render.response(run)
        events: Events = [lifecycle("response.created", wire)]
        if (run.options or {}).get("background"):
            events.append(lifecycle("response.queued", wire))
        return events

    async def claimed(self, session: AsyncSession, run: Run) -> Events:
        events: Events = []
        if run.attempts > 1:
            # What an interrupted attempt was streaming stays, closed and empty: its clients saw
            # it start, and the answer this attempt gives is the response's text.
            closed = await finish.close_open_items(session, run, "incomplete", keep_text=False)
            events = _closed_events(closed, await _indexes(session, run))
        return [*events, lifecycle("response.in_progress", render.response(run))]

    def requeued(self, run: Run) -> Events:
        if not (run.options or {}).get("background"):
            return []  # a foreground response stays in progress; `claimed` says so again
        return [lifecycle("response.queued", render.response(run))]

    async def ended_outside(
        self, session: AsyncSession, run: Run, error: tuple[str, str] | None
    ) -> Events:
        closed = await finish.close_open_items(session, run, run.status)
        closing = _closed_events(closed, await _indexes(session, run))
        return [*closing, *await _ending(session, run)]


RESPONSES = ResponseSurface()

"""The Assistants API's view of an execution: run steps and `thread.*` events.

A turn's text is a message (with a `message_creation` step); its tool calls are one
`tool_calls` step whose details hold each call and, once known, its output. Images a tool made
lead the next assistant message as `image_file` parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import Item, Run, RunStep
from assistantd.kit.ids import Prefix, created_at_of, new_id
from assistantd.kit.timeutil import now
from assistantd.messages import service as messages
from assistantd.runs import finish, render, repository
from assistantd.runs.deps import RunDeps
from assistantd.runs.events import EventWriter
from assistantd.runs.recorder import CallOutcome, Events
from assistantd.runs.turn import PendingCall
from assistantd.sandbox.code_stream import CodeStream
from assistantd.tools.base import ToolResult

_TAKEN_OVER = (
    "server_error",
    "The worker executing this step stopped; another worker took the run over.",
)
# How open steps end, by the run's end.
STEP_STATUS = {"cancelled": "cancelled", "failed": "failed", "expired": "expired"}


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


def _zero_usage() -> dict[str, int]:
    return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


class ThreadRecorder:
    waits_for_outputs: bool = True
    keeps_reasoning: bool = False

    def __init__(self, deps: RunDeps, run: Run, writer: EventWriter) -> None:
        self.deps = deps
        self.run = run
        self.writer = writer
        self.items_thread_id: str | None = run.thread_id
        # Server-tool output waiting to appear in the next assistant message (e.g. images).
        self._carry: list[dict[str, Any]] = []
        self._message_steps: dict[str, RunStep] = {}
        self._tool_step: RunStep | None = None
        self._code_streams: dict[str, CodeStream] = {}

    def context_loaded(self, items: Sequence[Item]) -> None:
        pass

    # --- while the model streams ----------------------------------------------------------------

    def message_started(self, message: Item) -> None:
        leading = self._carry
        message.content = list(leading)
        step = _step(
            self.run,
            "message_creation",
            {"type": "message_creation", "message_creation": {"message_id": message.id}},
        )
        self._message_steps[message.id] = step
        wire_step = render.step(step)
        # Announced empty, as OpenAI does: the parts come in the deltas below, once (an SDK's
        # event handler adds each delta to the snapshot the `created` event gave it).
        wire_message = messages.render(message).model_copy(update={"content": []})
        # Stored with their `created` events by the event store, off the model stream's path.
        self.writer.emit("thread.run.step.created", wire_step, rows=[message, step])
        self.writer.emit("thread.run.step.in_progress", wire_step)
        self.writer.emit("thread.message.created", wire_message)
        self.writer.emit("thread.message.in_progress", wire_message)
        for index, part in enumerate(leading):
            self._message_delta(message, {"index": index, **part})

    def reasoning_started(self, item: Item) -> None:
        pass

    def reasoning_text(self, item: Item, fragment: str) -> None:
        pass

    def reasoning_done(self, item: Item, text: str) -> None:
        pass

    def text(
        self,
        message: Item,
        fragment: str,
        *,
        save: dict[str, Any] | None = None,
        logprobs: list[dict[str, Any]] | None = None,
    ) -> None:
        leading = sum(1 for part in message.content or [] if part["type"] != "text")
        self._message_delta(
            message,
            {"index": leading, "type": "text", "text": {"value": fragment, "annotations": []}},
            save=save,
        )

    def _message_delta(
        self, message: Item, part: dict[str, Any], *, save: dict[str, Any] | None = None
    ) -> None:
        self.writer.emit(
            "thread.message.delta",
            {"id": message.id, "object": "thread.message.delta", "delta": {"content": [part]}},
            update=(Item, message.id, save) if save else None,
        )

    def call_started(self, call: PendingCall, position: int) -> None:
        rows: list[Any] = [call.item]
        if self._tool_step is None:
            self._tool_step = _step(
                self.run, "tool_calls", {"type": "tool_calls", "tool_calls": []}
            )
            wire = render.step(self._tool_step)
            self.writer.emit("thread.run.step.created", wire, rows=[self._tool_step, *rows])
            self.writer.emit("thread.run.step.in_progress", wire)
            rows = []
        if call.tool is not None:
            initial = call.tool.initial_details(call.id)
        else:
            initial = {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": "", "output": None},
            }
        self._step_delta({"index": position, **initial}, rows)

    def call_arguments(self, call: PendingCall, position: int, fragment: str) -> None:
        if call.tool is None:
            self._step_delta(
                {"index": position, "type": "function", "function": {"arguments": fragment}}
            )
        elif call.tool.type == "code_interpreter":
            # The code, as the model writes it.
            code = self._code_streams.setdefault(call.id, CodeStream()).feed(fragment)
            if code:
                self._step_delta(
                    {
                        "index": position,
                        "type": "code_interpreter",
                        "code_interpreter": {"input": code},
                    }
                )

    def _step_delta(self, tool_call: dict[str, Any], rows: Sequence[Any] = ()) -> None:
        assert self._tool_step is not None
        self.writer.emit(
            "thread.run.step.delta",
            {
                "id": self._tool_step.id,
                "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": [tool_call]}},
            },
            rows=rows,
        )

    # --- after the model's turn -----------------------------------------------------------------

    def calls_streamed(self, calls: Sequence[PendingCall]) -> None:
        pass

    def tool_delta(self, call: PendingCall, position: int, delta: dict[str, Any]) -> None:
        streamed = self._code_streams.get(call.id)
        inner = delta.get("code_interpreter")
        if streamed is not None and inner is not None and "input" in inner:
            if inner["input"] == streamed.code:  # the client has this code already
                inner = {k: v for k, v in inner.items() if k != "input"}
                if not inner:
                    return
                delta = {**delta, "code_interpreter": inner}
        self._step_delta({"index": position, **delta})

    def tool_done(self, call: PendingCall, position: int, result: ToolResult) -> None:
        self._carry.extend(result.message_parts)

    def compaction_started(self, item: Item) -> None:
        raise AssertionError("an Assistants run never compacts its context")

    def compaction_progress(self, item: Item) -> None:
        raise AssertionError("an Assistants run never compacts its context")

    def compaction_done(self, item: Item) -> None:
        raise AssertionError("an Assistants run never compacts its context")

    def pending_parts(self) -> bool:
        return bool(self._carry)

    async def message_closed(
        self,
        session: AsyncSession,
        message: Item,
        *,
        cut_short: bool,
        usage: dict[str, int],
        owns_usage: bool,
    ) -> None:
        step = self._message_steps.pop(message.id)
        values: dict[str, Any] = {
            "status": "completed",
            "completed_at": now(),
            "usage": usage if owns_usage else _zero_usage(),
        }
        await repository.update_step(session, step.id, values)
        for key, value in values.items():
            setattr(step, key, value)
        self._carry = []
        text = next(part for part in message.content or [] if part["type"] == "text")
        if text["text"]["annotations"]:
            # Streaming clients get the citations as a last delta of the text part.
            leading = sum(1 for part in message.content or [] if part["type"] != "text")
            self.writer.stage(
                "thread.message.delta",
                {
                    "id": message.id,
                    "object": "thread.message.delta",
                    "delta": {
                        "content": [
                            {
                                "index": leading,
                                "type": "text",
                                "text": {
                                    "value": "",
                                    "annotations": [
                                        {"index": n, **annotation}
                                        for n, annotation in enumerate(text["text"]["annotations"])
                                    ],
                                },
                            }
                        ]
                    },
                },
            )
        event = "thread.message.incomplete" if cut_short else "thread.message.completed"
        self.writer.stage(event, messages.render(message))
        self.writer.stage("thread.run.step.completed", render.step(step))

    async def calls_closed(
        self,
        session: AsyncSession,
        run: Run,
        outcomes: Sequence[CallOutcome],
        usage: dict[str, int],
        *,
        waiting: bool,
    ) -> None:
        step = self._tool_step
        assert step is not None
        self._tool_step = None
        details: list[dict[str, Any]] = []
        for outcome in outcomes:
            call = outcome.call
            if outcome.result is not None:
                details.append(
                    {
                        **outcome.result.details,
                        "_function_name": call.name,
                        "_arguments": call.arguments,
                        "_model_output": outcome.result.output,
                    }
                )
            else:
                details.append(
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.name,
                            "arguments": call.arguments,
                            "output": outcome.output,
                        },
                    }
                )
        step.step_details = {"type": "tool_calls", "tool_calls": details}
        step.usage = usage
        values: dict[str, Any] = {"step_details": step.step_details, "usage": usage}
        if not waiting:
            step.status = values["status"] = "completed"
            step.completed_at = values["completed_at"] = now()
            self.writer.stage("thread.run.step.completed", render.step(step))
        await repository.update_step(session, step.id, values)

    def requires_action(self, run: Run) -> None:
        self.writer.stage("thread.run.requires_action", render.run(run))

    async def closing(
        self,
        session: AsyncSession,
        run: Run,
        status: str,
        closed: Sequence[Item],
        error: tuple[str, str] | None,
    ) -> None:
        if status == "cancelled":
            current = await repository.get_any(session, run.id)
            assert current is not None
            wire = render.run(current).model_dump()
            self.writer.stage("thread.run.cancelling", {**wire, "status": "cancelling"})
        for name, payload in await _closed_events(session, run, status, closed, error=error):
            self.writer.stage(name, payload)

    async def ended(self, session: AsyncSession, run: Run) -> None:
        self.writer.stage(f"thread.run.{run.status}", render.run(run))

    def requeued(self, run: Run) -> Events:
        return THREADS.requeued(run)


async def _closed_events(
    session: AsyncSession,
    run: Run,
    status: str,
    closed: Sequence[Item],
    *,
    error: tuple[str, str] | None = None,
) -> Events:
    """The events of a run's items closed early, and its open steps, now ended too."""
    out: Events = [
        ("thread.message.incomplete", messages.render(item))
        for item in closed
        if item.type == "message"
    ]
    stamp = now()
    open_steps = (
        await session.scalars(
            select(RunStep).where(RunStep.run_id == run.id, RunStep.status == "in_progress")
        )
    ).all()
    step_status = STEP_STATUS.get(status, "completed")
    for step in open_steps:
        step.status = step_status
        if step_status == "cancelled":
            step.cancelled_at = stamp
        elif step_status == "expired":
            step.expired_at = stamp
        elif step_status == "failed":
            step.failed_at = stamp
            code = (
                "rate_limit_exceeded"
                if error and error[0] == "rate_limit_exceeded"
                else "server_error"
            )
            step.last_error = {"code": code, "message": error[1] if error else "The run failed."}
        else:
            step.completed_at = stamp
        out.append((f"thread.run.step.{step_status}", render.step(step)))
    await session.flush()
    return out


class ThreadSurface:
    def recorder(self, deps: RunDeps, run: Run, writer: EventWriter) -> ThreadRecorder:
        return ThreadRecorder(deps, run, writer)

    def created(self, run: Run) -> Events:
        wire = render.run(run)
        return [("thread.run.created", wire), ("thread.run.queued", wire)]

    async def claimed(self, session: AsyncSession, run: Run) -> Events:
        events: Events = []
        if run.attempts > 1:
            # Executed before: what the interrupted attempt was streaming ends here (a message
            # with the text it had stored), and this attempt starts afresh.
            closed = await finish.close_open_items(session, run, "failed")
            events = await _closed_events(session, run, "failed", closed, error=_TAKEN_OVER)
        return [*events, ("thread.run.in_progress", render.run(run))]

    def requeued(self, run: Run) -> Events:
        return [("thread.run.queued", render.run(run))]

    async def ended_outside(
        self, session: AsyncSession, run: Run, error: tuple[str, str] | None
    ) -> Events:
        closed = await finish.close_open_items(session, run, run.status)
        events = await _closed_events(session, run, run.status, closed, error=error)
        return [*events, (f"thread.run.{run.status}", render.run(run))]


THREADS = ThreadSurface()

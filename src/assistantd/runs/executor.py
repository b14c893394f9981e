"""Execute one claimed run: model turns, tools, and the run's end (every path to a status).

The executor is re-entrant: it rebuilds the model's context from the thread and from the run's
finished steps, so a run resumed after `submit_tool_outputs`, or retried after a worker crash
(unfinished steps discarded first), carries on where it stopped without writing anything twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.backends.chat import BackendError, ChatRequest
from assistantd.backends.routing import ModelRoute, UnknownModelError
from assistantd.db.models import Assistant, Run, Thread
from assistantd.kit.timeutil import now
from assistantd.messages import service as messages
from assistantd.runs import context, finish, render, repository, state
from assistantd.runs.deps import RunDeps
from assistantd.runs.events import EventWriter
from assistantd.runs.signals import run_queued_on_commit
from assistantd.runs.state import RunStatus
from assistantd.runs.turn import Turn, TurnResult
from assistantd.tools.base import ServerTool, ToolContext, ToolResult, ToolUnavailable

log = logging.getLogger(__name__)


class RunFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RunIncomplete(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LeaseLost(Exception):
    """Another actor (reaper, cancel) moved the run; this executor must stop quietly."""


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


class RunExecutor:
    def __init__(self, deps: RunDeps, run: Run, last_seq: int, worker_id: str) -> None:
        """`run` as claimed (unfinished steps discarded, `in_progress` announced in the claiming
        transaction) and its last event number."""
        self.deps = deps
        self.run_id = run.id
        self.worker_id = worker_id
        self._claimed = (run, last_seq)
        self.cancel_requested = False
        self.hand_back = False
        self._turn: Turn | None = None
        self._forced_done = False
        # The last request's output limit was the run's own max_completion_tokens (not only the
        # model's cap): a turn cut short then makes the run incomplete.
        self._budget_binds = False
        # Server-tool output waiting to appear in the next assistant message (e.g. images).
        self._carry_parts: list[dict[str, Any]] = []
        # Every server-tool result of this execution, for annotating the assistant's text.
        self._tool_results: list[tuple[ServerTool, ToolContext, ToolResult]] = []

    # --- entry ------------------------------------------------------------------------------

    async def execute(self) -> None:
        run, last = self._claimed
        writer = EventWriter(self.deps.sessions, self.deps.signals, run.id, last)
        try:
            await self._loop(run, writer)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if self.cancel_requested:
                await self._finish(run, writer, RunStatus.CANCELLED)
            elif self.hand_back:
                await self._hand_back(run, writer)
            else:
                raise
        except LeaseLost:
            log.info("run %s: lease lost, stopping", run.id)
        except RunIncomplete as exc:
            await self._finish(run, writer, RunStatus.INCOMPLETE, incomplete_reason=exc.reason)
        except RunFailure as exc:
            await self._finish(run, writer, RunStatus.FAILED, error=(exc.code, exc.message))
        except BackendError as exc:
            await self._finish(run, writer, RunStatus.FAILED, error=(exc.code, exc.message))
        except Exception as exc:
            await self._finish(
                run,
                writer,
                RunStatus.FAILED,
                error=("server_error", "The server had an error while processing this run."),
                cause=exc,
            )
        finally:
            await writer.close()

    # --- the turn loop ------------------------------------------------------------------------

    async def _loop(self, run: Run, writer: EventWriter) -> None:
        settings = self.deps.settings
        try:
            route = self.deps.models.resolve(run.model)
        except UnknownModelError as exc:
            raise RunFailure("invalid_prompt", str(exc)) from exc
        tools, server_tools = self._tools(run)
        for tool in server_tools.values():
            try:
                await tool.check_available()
            except ToolUnavailable as exc:
                raise RunFailure("server_error", str(exc)) from exc
        while True:
            if run.model_turns >= settings.max_model_turns:
                raise RunFailure(
                    "server_error",
                    f"The run stopped after {settings.max_model_turns} model calls without a "
                    "final answer (ASSISTANTD_MAX_MODEL_TURNS).",
                )
            request, prompt_estimate = await self._request(run, route, tools)
            self._turn = Turn(self.deps, run, writer, leading_parts=self._carry_parts)
            result = await self._turn.stream(route, request)
            run.model_turns += 1
            run.prompt_tokens += result.prompt_tokens if result.usage_reported else prompt_estimate
            run.completion_tokens += result.completion_tokens
            turn_usage = _usage(
                result.prompt_tokens if result.usage_reported else prompt_estimate,
                result.completion_tokens,
            )
            if await self._settle(run, writer, result, turn_usage, server_tools):
                return

    def _tools(self, run: Run) -> tuple[list[dict[str, Any]], dict[str, ServerTool]]:
        chat_tools: list[dict[str, Any]] = []
        server: dict[str, ServerTool] = {}
        for definition in run.tools:
            if definition["type"] == "function":
                fn = definition["function"]
                spec: dict[str, Any] = {
                    "name": fn["name"],
                    "parameters": fn.get("parameters") or {"type": "object", "properties": {}},
                }
                if fn.get("description"):
                    spec["description"] = fn["description"]
                if fn.get("strict"):
                    spec["strict"] = True
                chat_tools.append({"type": "function", "function": spec})
                continue
            tool = self.deps.tools.get(definition["type"])
            if tool is None:
                raise RunFailure(
                    "server_error",
                    f"The {definition['type']} tool is not available on this server.",
                )
            server[tool.function_name] = tool
            chat_tools.append(tool.function_schema(definition))
        return chat_tools, server

    def _tool_choice(self, run: Run) -> Any:
        choice = run.tool_choice
        if self._forced_done or choice in (None, "auto"):
            return "auto"
        if choice in ("none", "required"):
            return choice
        if choice["type"] == "function":
            return {"type": "function", "function": {"name": choice["function"]["name"]}}
        tool = self.deps.tools.get(choice["type"])
        assert tool is not None
        return {"type": "function", "function": {"name": tool.function_name}}

    async def _request(
        self, run: Run, route: ModelRoute, tools: list[dict[str, Any]]
    ) -> tuple[ChatRequest, int]:
        budget, reason = context.prompt_budget(run, route.context_window, route.max_output_tokens)
        # Closed directly rather than by `async with`, whose shielded close yields to every
        # other ready task before the model is called (the request should leave first).
        session = self.deps.reads()
        try:
            # A run on its first claim has no steps before this executor's first turn (only an
            # executor of the run writes them).
            fresh = run.attempts <= 1 and self._turn is None
            steps = [] if fresh else await repository.steps_of(session, run.id)
            self._forced_done = any(s.type == "tool_calls" for s in steps)
            try:
                built = await context.build(
                    session,
                    self.deps.blobs,
                    run,
                    steps,
                    budget=budget,
                    budget_reason=reason,
                    tools=tools,
                )
            except context.PromptTooLong as exc:
                if exc.reason == "max_prompt_tokens":
                    raise RunIncomplete("max_prompt_tokens") from exc
                raise RunFailure(
                    "invalid_prompt",
                    f"The conversation does not fit the context window of model '{run.model}' "
                    f"({route.context_window} tokens): the newest message alone needs about "
                    f"{exc.tokens}. Shorten it or use a model with a larger window.",
                ) from exc
        finally:
            await session.close()
        max_tokens = None
        if run.max_completion_tokens is not None:
            max_tokens = run.max_completion_tokens - run.completion_tokens
            if max_tokens <= 0:
                raise RunIncomplete("max_completion_tokens")
        self._budget_binds = max_tokens is not None and (
            route.max_output_tokens is None or max_tokens <= route.max_output_tokens
        )
        if route.max_output_tokens is not None:
            max_tokens = min(max_tokens or route.max_output_tokens, route.max_output_tokens)
        response_format = run.response_format if isinstance(run.response_format, dict) else None
        request = ChatRequest(
            messages=built.messages,
            tools=tools,
            tool_choice=self._tool_choice(run) if tools else None,
            parallel_tool_calls=run.parallel_tool_calls if tools else None,
            temperature=run.temperature,
            top_p=run.top_p,
            max_tokens=max_tokens,
            response_format=response_format,
            reasoning_effort=run.reasoning_effort,
        )
        return request, built.prompt_tokens

    # --- after a turn -------------------------------------------------------------------------

    async def _settle(
        self,
        run: Run,
        writer: EventWriter,
        result: TurnResult,
        turn_usage: dict[str, int],
        server_tools: dict[str, ServerTool],
    ) -> bool:
        """Record the turn; True when the run stops here (finished or waiting)."""
        cut_short = result.finish_reason == "length"
        if result.calls:
            if result.message is not None:
                await self._close_message(result, writer, cut_short, turn_usage, False)
            waiting = await self._tool_calls(run, writer, result, turn_usage, server_tools)
            return waiting
        # The run ends with this turn: its message closes in the run's final transaction.
        closing = (result, cut_short, turn_usage) if result.message is not None else None
        # Cut short by the run's budget: the run is incomplete. By the model's own output cap:
        # the run completes with its message incomplete (`max_tokens`), as OpenAI's do.
        if cut_short and self._budget_binds:
            await self._finish(
                run,
                writer,
                RunStatus.INCOMPLETE,
                incomplete_reason="max_completion_tokens",
                closing=closing,
            )
            return True
        if self._carry_parts and result.message is None:
            await self._message_of_parts(run, writer)
        await self._finish(run, writer, RunStatus.COMPLETED, closing=closing)
        return True

    async def _close_message(
        self,
        result: TurnResult,
        writer: EventWriter,
        cut_short: bool,
        usage: dict[str, int],
        owns_usage: bool,
    ) -> None:
        annotations = await self._annotations(result.text)
        await writer.flush()
        async with self.deps.sessions() as session:
            await self._close_message_in(
                session, result, writer, cut_short, usage, owns_usage, annotations
            )
            await writer.commit(session)

    async def _close_message_in(
        self,
        session: AsyncSession,
        result: TurnResult,
        writer: EventWriter,
        cut_short: bool,
        usage: dict[str, int],
        owns_usage: bool,
        annotations: list[dict[str, Any]],
    ) -> None:
        """Complete (or cut short) the turn's message and its step in `session`."""
        message, step = result.message, result.message_step
        assert message is not None
        assert step is not None
        stamp = now()
        # Server-tool parts (images) placed before the text stay; the text gets annotated.
        leading = [part for part in message.content if part["type"] != "text"]
        message_values: dict[str, Any] = {
            "content": [
                *leading,
                {"type": "text", "text": {"value": result.text, "annotations": annotations}},
            ]
        }
        if cut_short:
            message_values.update(
                status="incomplete",
                incomplete_at=stamp,
                incomplete_details={"reason": "max_tokens"},
            )
        else:
            message_values.update(status="completed", completed_at=stamp)
        step_values: dict[str, Any] = {
            "status": "completed",
            "completed_at": stamp,
            "usage": usage if owns_usage else _usage(0, 0),
        }
        # The turn created both rows, and only the run writes their content and status: update
        # them by key and render the turn's copies rather than read them back first.
        await repository.update_message(session, message.id, message_values)
        await repository.update_step(session, step.id, step_values)
        for key, value in message_values.items():
            setattr(message, key, value)
        for key, value in step_values.items():
            setattr(step, key, value)
        self._carry_parts = []
        event = "thread.message.incomplete" if cut_short else "thread.message.completed"
        writer.stage(event, messages.render(message))
        writer.stage("thread.run.step.completed", render.step(step))

    async def _message_of_parts(self, run: Run, writer: EventWriter) -> None:
        """The model ended without text after a tool made images: they still get a message."""
        turn = Turn(self.deps, run, writer, leading_parts=self._carry_parts)
        await turn._text("")
        await self._close_message(turn.result, writer, False, _usage(0, 0), True)

    async def _tool_calls(
        self,
        run: Run,
        writer: EventWriter,
        result: TurnResult,
        usage: dict[str, int],
        server_tools: dict[str, ServerTool],
    ) -> bool:
        step = result.tool_step
        assert step is not None
        functions = {t["function"]["name"] for t in run.tools if t["type"] == "function"}
        details: list[dict[str, Any]] = []
        waiting: list[dict[str, Any]] = []
        for position, call in enumerate(result.calls):
            tool = server_tools.get(call.name)
            if tool is not None:
                ctx = await self._tool_context(run, tool, writer, step.id, position)
                try:
                    outcome = await tool.execute(ctx, call.id, call.arguments)
                except ToolUnavailable as exc:
                    raise RunFailure("server_error", str(exc)) from exc
                self._carry_parts.extend(outcome.message_parts)
                self._tool_results.append((tool, ctx, outcome))
                details.append(
                    {
                        **outcome.details,
                        "_function_name": call.name,
                        "_arguments": call.arguments,
                        "_model_output": outcome.output,
                    }
                )
                continue
            output = None
            if call.name not in functions:
                output = f"Error: there is no tool named '{call.name}'."
            entry = {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments, "output": output},
            }
            details.append(entry)
            if output is None:
                waiting.append(
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                )
        await writer.flush()
        async with self.deps.sessions() as session:
            step = await session.merge(step)
            step.step_details = {"type": "tool_calls", "tool_calls": details}
            step.usage = usage
            if waiting:
                required = {
                    "type": "submit_tool_outputs",
                    "submit_tool_outputs": {"tool_calls": waiting},
                }
                moved = await state.transition(
                    session,
                    run.id,
                    RunStatus.IN_PROGRESS,
                    RunStatus.REQUIRES_ACTION,
                    held_by=self.worker_id,
                    required_action=required,
                    expires_at=now() + self.deps.settings.run_expiry_seconds,
                    **self._counters(run),
                )
                if moved is None:
                    writer.discard_staged()
                    await session.rollback()
                    await self._lost_race(run, writer)
                    return True
                writer.stage("thread.run.requires_action", render.run(moved))
                await writer.commit(session)
                return True
            step.status = "completed"
            step.completed_at = now()
            await self._save_counters(session, run)
            writer.stage("thread.run.step.completed", render.step(step))
            await writer.commit(session)
        return False

    async def _annotations(self, text: str) -> list[dict[str, Any]]:
        """File citations and paths the server tools of this run find in the final text."""
        found: list[dict[str, Any]] = []
        by_tool: dict[str, tuple[ServerTool, ToolContext, list[ToolResult]]] = {}
        for tool, ctx, outcome in self._tool_results:
            by_tool.setdefault(tool.type, (tool, ctx, []))[2].append(outcome)
        for tool, ctx, outcomes in by_tool.values():
            found.extend(await tool.annotate(ctx, text, outcomes))
        return sorted(found, key=lambda a: (a["start_index"], a["end_index"]))

    async def _tool_context(
        self, run: Run, tool: ServerTool, writer: EventWriter, step_id: str, position: int
    ) -> ToolContext:
        async with self.deps.reads() as session:
            assistant = await session.get(Assistant, run.assistant_id)
            thread = await session.get(Thread, run.thread_id)
        merged: dict[str, Any] = {}
        for source in (
            assistant.tool_resources if assistant else None,
            thread.tool_resources if thread else None,
        ):
            for key, value in (source or {}).items():
                bucket = merged.setdefault(key, {})
                for field_name, ids in value.items():
                    bucket[field_name] = list(dict.fromkeys([*bucket.get(field_name, []), *ids]))
        definition = next((t for t in run.tools if t["type"] == tool.type), {"type": tool.type})
        return ToolContext(
            project=run.project,
            thread_id=run.thread_id,
            run_id=run.id,
            assistant_id=run.assistant_id,
            tool_definition=definition,
            tool_resources=merged,
            sessions=self.deps.sessions,
            blobs=self.deps.blobs,
            settings=self.deps.settings,
            include=list(run.include or []),
            emit_delta=lambda delta: writer.emit(
                "thread.run.step.delta",
                {
                    "id": step_id,
                    "object": "thread.run.step.delta",
                    "delta": {
                        "step_details": {
                            "type": "tool_calls",
                            "tool_calls": [{"index": position, **delta}],
                        }
                    },
                },
            ),
        )

    # --- ends -----------------------------------------------------------------------------------

    def _counters(self, run: Run) -> dict[str, Any]:
        return {
            "model_turns": run.model_turns,
            "prompt_tokens": run.prompt_tokens,
            "completion_tokens": run.completion_tokens,
        }

    async def _save_counters(self, session: AsyncSession, run: Run) -> None:
        row = await session.get(Run, run.id)
        if row is not None:
            for key, value in self._counters(run).items():
                setattr(row, key, value)

    async def _reload(self, session: AsyncSession, run_id: str) -> Run:
        row = await session.scalar(
            select(Run).where(Run.id == run_id).execution_options(populate_existing=True)
        )
        assert row is not None
        return row

    async def _finish(
        self,
        run: Run,
        writer: EventWriter,
        status: RunStatus,
        *,
        error: tuple[str, str] | None = None,
        incomplete_reason: str | None = None,
        closing: tuple[TurnResult, bool, dict[str, int]] | None = None,
        cause: BaseException | None = None,
    ) -> None:
        """Close open steps and messages, then move the run to its terminal `status`.

        `closing` is the last turn, whose message (if cut short, `True`) and usage are closed
        in the same transaction. `cause` is the unexpected exception that failed the run (its
        traceback goes with the run's failure line in the log).
        """
        annotations = await self._annotations(closing[0].text) if closing else []
        await writer.flush()
        fields: dict[str, Any] = {
            "usage": _usage(run.prompt_tokens, run.completion_tokens),
            **self._counters(run),
        }
        if error is not None:
            fields["last_error"] = {"code": error[0], "message": error[1]}
        if incomplete_reason is not None:
            fields["incomplete_details"] = {"reason": incomplete_reason}
        sources = {
            RunStatus.CANCELLED: [RunStatus.CANCELLING],
            RunStatus.FAILED: [RunStatus.IN_PROGRESS, RunStatus.CANCELLING],
        }.get(status, [RunStatus.IN_PROGRESS])
        partial = self._turn.result if self._turn is not None else None
        partial_text = {partial.message.id: partial.text} if partial and partial.message else {}
        async with self.deps.sessions() as session:
            if status is RunStatus.CANCELLED:
                current = await self._reload(session, run.id)
                wire = render.run(current).model_dump()
                writer.stage("thread.run.cancelling", {**wire, "status": "cancelling"})
            if closing is not None:
                result, cut_short, usage = closing
                await self._close_message_in(
                    session, result, writer, cut_short, usage, True, annotations
                )
            # A first execution that completes has closed every step and message it opened
            # (the last turn's just above); otherwise look for what was left open.
            if status is not RunStatus.COMPLETED or run.attempts > 1:
                for name, payload in await finish.close_open_work(
                    session, run, status.value, error=error, partial_text=partial_text
                ):
                    writer.stage(name, payload)
            moved = await state.transition(
                session, run.id, sources, status, held_by=self.worker_id, cause=cause, **fields
            )
            if moved is None:
                if cause is not None:
                    log.error("run %s: error after it left this worker", run.id, exc_info=cause)
                writer.discard_staged()
                await session.rollback()
                await self._lost_race(run, writer)
                return
            writer.stage(f"thread.run.{status.value}", render.run(moved))
            await writer.commit(session)

    async def _lost_race(self, run: Run, writer: EventWriter) -> None:
        """A guarded update found the run moved: honour a cancel, else let it go."""
        async with self.deps.reads() as session:
            current = await repository.get_any(session, run.id)
        if (
            current is not None
            and current.status == RunStatus.CANCELLING
            and current.lease_owner == self.worker_id
        ):
            await self._finish(run, writer, RunStatus.CANCELLED)
            return
        raise LeaseLost()

    async def _hand_back(self, run: Run, writer: EventWriter) -> None:
        """Shutdown: give the run back to the queue, and wake a worker to take it."""
        await writer.flush()
        async with self.deps.sessions() as session:
            queued = await state.transition(
                session, run.id, RunStatus.IN_PROGRESS, RunStatus.QUEUED, held_by=self.worker_id
            )
            if queued is not None:
                writer.stage("thread.run.queued", render.run(queued))
                run_queued_on_commit(session, self.deps.signals)
            await writer.commit(session)

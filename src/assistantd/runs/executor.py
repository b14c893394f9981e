"""Execute one claimed run or response: model turns, tools, and the end (every path to a status).

One executor serves both API surfaces; what differs (events, Assistants run steps) is the
recorder's (see `recorder`). The executor is re-entrant: it rebuilds the model's context from
items, so a run resumed after `submit_tool_outputs`, or retried after a worker crash (what the
interrupted attempt left open tidied first), carries on where it stopped without writing
anything twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.backends.chat import BackendError, ChatRequest
from assistantd.backends.constrained import constrain
from assistantd.backends.routing import ModelRoute, UnknownModelError
from assistantd.db.core import is_transient
from assistantd.db.models import Assistant, Item, Run, Thread
from assistantd.items import client_calls
from assistantd.items.content import stored_text
from assistantd.items.kinds import CALL_TYPES, SERVER_CALL_TYPES, new_item, server_call_data
from assistantd.items.render import OUTPUT_LOGPROBS
from assistantd.kit.ids import Prefix
from assistantd.kit.timeutil import now
from assistantd.mcp import runner as mcp
from assistantd.runs import context, finish, repository, state
from assistantd.runs.autocompaction import AutoCompaction
from assistantd.runs.deps import RunDeps
from assistantd.runs.events import EventWriter, LeaseLost
from assistantd.runs.recorder import CallOutcome, surface_of
from assistantd.runs.signals import give_way, on_outcome, run_queued_on_commit
from assistantd.runs.state import RunStatus
from assistantd.runs.turn import Turn, TurnResult, hosted_call
from assistantd.tools.base import ServerTool, ToolContext, ToolResult, ToolUnavailable
from assistantd.tools.client import chat_function

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


# How long an execution holds its events back (see EventWriter), when no streamer in another
# process waits for them: a short answer is stored in the transaction that ends it. A client
# re-attaching from another process gets the first events that much later; a crash loses at
# most as much of them.
HOLD_SECONDS = 0.5


def _streamed(run: Run) -> bool:
    """Whether the run's creator asked to stream it (a streamer may wait in any process)."""
    return bool((run.options or {}).get("stream"))


_SERVER_ERROR = ("server_error", "The server had an error while processing this run.")


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


class RunExecutor:
    def __init__(
        self,
        deps: RunDeps,
        run: Run,
        last_seq: int,
        worker_id: str,
        *,
        context: Sequence[Item] | None = None,
        gate: asyncio.Future[bool] | None = None,
        local: bool = False,
        opening: list[dict[str, Any]] | None = None,
    ) -> None:
        """`run` as claimed (what an interrupted attempt left tidied, `in_progress` announced
        in the claiming transaction) and its last event number; `context`, when its creator
        knew them, the items of its first turn. `gate`, for a run started before its creation
        committed: True once it has (nothing is written before), False if it never will;
        `opening`, its first events when the creation left them to it to store (see
        `EventWriter`)."""
        self.deps = deps
        self.run_id = run.id
        self.project = run.project
        self.worker_id = worker_id
        self._claimed = (run, last_seq)
        self._preloaded = list(context) if context is not None else None
        self._gate = gate
        self._opening = opening
        self.local = local
        self.abandoned = False  # its creation did not commit
        self.cancel_requested = False
        self.hand_back = False
        self.lease_lost = False
        self._turn: Turn | None = None
        self._tool_called = False
        self._client_tools: dict[str, dict[str, Any]] = {}
        # The last request's output limit was the run's own max_completion_tokens (not only the
        # model's cap): a turn cut short then makes the run incomplete.
        self._budget_binds = False
        # Every server-tool result of this execution, for annotating the assistant's text.
        self._tool_results: list[tuple[ServerTool, ToolContext, ToolResult]] = []
        self._reasoning_tokens = 0  # of this execution's completion tokens
        self._compaction: AutoCompaction | None = None
        # The model's context window (tokens), once known; None: nobody knows it.
        self._window: int | None = None
        self._mcp_functions: dict[str, tuple[str, dict[str, Any]]] = {}
        self._mcp_started = False  # the calls this request approves have run
        self._mcp_forced: list[str] = []  # the functions an MCP tool_choice forces this turn

    # --- entry ------------------------------------------------------------------------------

    @property
    def created(self) -> bool:
        """Whether the run is stored (its creation has committed)."""
        gate = self._gate
        return gate is None or (gate.done() and gate.result())

    async def _until_created(self) -> None:
        """Wait until the run's creation has committed, before writing anything of it."""
        gate = self._gate
        if gate is None:
            return
        if not await gate:
            raise asyncio.CancelledError()  # the worker cancels the task too (`abandoned`)
        self._gate = None
        # The creation committed a moment ago and its stream is opening: it sends what the
        # model answered meanwhile before this run's first transaction takes the loop (on
        # SQLite statements run on the loop's thread: a short run's last transaction is ~2 ms).
        await give_way()

    async def execute(self) -> None:
        run, last = self._claimed
        writer = EventWriter(
            self.deps.sessions,
            self.deps.signals,
            run.id,
            last,
            owner=self.worker_id,
            hold_seconds=HOLD_SECONDS if self.local or not _streamed(run) else 0.0,
            created=self._gate,
            opening=self._opening,
        )
        self.rec = surface_of(run.id).recorder(self.deps, run, writer)
        self._compaction = AutoCompaction.of(self.deps, run, self.rec)
        try:
            await self._loop(run, writer)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if self.lease_lost or self.abandoned:
                return  # another worker owns the run now, or it never existed
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
            code: str = exc.code
            if code == "context_length_exceeded" and not run.id.startswith(Prefix.RESPONSE):
                code = "invalid_prompt"  # a run's last_error has no such code
            await self._finish(run, writer, RunStatus.FAILED, error=(code, exc.message))
        except DBAPIError as exc:
            if not is_transient(exc):
                await self._finish(run, writer, RunStatus.FAILED, error=_SERVER_ERROR, cause=exc)
                return
            # The database, not the run, is at fault: give the run back for another try
            # (if even that fails, the lease lapses and the reaper requeues it).
            log.warning("run %s: database unavailable (%s); handing the run back", run.id, exc)
            try:
                await self._hand_back(run, writer)
            except Exception:
                log.warning("run %s: could not hand the run back; its lease will lapse", run.id)
        except Exception as exc:
            await self._finish(run, writer, RunStatus.FAILED, error=_SERVER_ERROR, cause=exc)
        finally:
            await writer.close()

    # --- the turn loop ------------------------------------------------------------------------

    async def _loop(self, run: Run, writer: EventWriter) -> None:
        settings = self.deps.settings
        try:
            route = self.deps.models.resolve(run.model)
        except UnknownModelError as exc:
            raise RunFailure("invalid_prompt", str(exc)) from exc
        self._window = await self.deps.windows.of(route)
        tools, server_tools = self._tools(run)
        first = run.model_turns
        steerable = bool((run.options or {}).get("steerable"))
        while True:
            if steerable and run.model_turns > first and await self._steered(run):
                raise RunIncomplete("steered")  # a successor goes on (`responses.steering`)
            if run.model_turns >= settings.max_model_turns:
                raise RunFailure(
                    "server_error",
                    f"The run stopped after {settings.max_model_turns} model calls without a "
                    "final answer (ASSISTANTD_MAX_MODEL_TURNS).",
                )
            request, prompt_estimate = await self._request(run, route, tools, server_tools)
            if request is None:  # the response was its context's compaction
                await self._finish(run, writer, RunStatus.COMPLETED)
                return
            self._turn = Turn(self.deps, run, self.rec, self._client_tools, creation=self._gate)
            self._turn.hosted = self._mcp_functions
            # Before the run's creation commits, the turn's events are published (a stream
            # sends them once it starts, at the commit) and held back from the table.
            result = await self._turn.stream(route, request, gather=not _streamed(run))
            run.model_turns += 1
            run.prompt_tokens += result.prompt_tokens if result.usage_reported else prompt_estimate
            run.completion_tokens += result.completion_tokens
            self._reasoning_tokens += result.reasoning_tokens
            turn_usage = _usage(
                result.prompt_tokens if result.usage_reported else prompt_estimate,
                result.completion_tokens,
            )
            if await self._settle(run, writer, result, turn_usage):
                return

    async def _steered(self, run: Run) -> bool:
        """Whether a WebSocket client steered the response: it ends before this model call."""
        session = self.deps.reads()
        try:
            return await repository.steered(session, run.id)
        finally:
            await session.close()

    def _tools(self, run: Run) -> tuple[list[dict[str, Any]], dict[str, ServerTool]]:
        chat_tools: list[dict[str, Any]] = []
        server: dict[str, ServerTool] = {}
        for definition in run.tools:
            if definition["type"] == "function":
                if definition.get("deferred"):
                    continue  # offered once a tool search loads it
                chat_tools.append(chat_function(definition["function"]))
                continue
            if definition["type"] == "mcp":
                continue  # its functions come from the server's tool list (`_request`)
            tool = self.deps.tools.get(definition["type"])
            if tool is None:
                raise RunFailure(
                    "server_error",
                    f"The {definition['type']} tool is not available on this server.",
                )
            offered = getattr(tool, "offered", None)
            if offered is not None and not offered(definition):
                continue  # accepted, and not for the model (e.g. web search that is off)
            if not hosted_call(run.tools, tool.type, tool.function_name):
                continue  # a function of the client's has its name, and wins
            server[tool.function_name] = tool
            chat_tools.append(tool.function_schema(definition))
        return chat_tools, server

    def _tool_choice(self, run: Run, tools: list[dict[str, Any]]) -> Any:
        choice = run.tool_choice
        if self._tool_called or choice in (None, "auto"):
            return "auto"
        if choice in ("none", "required"):
            return choice
        if choice["type"] == "allowed_tools":
            return choice["mode"]
        if choice["type"] == "function":
            return {"type": "function", "function": {"name": choice["function"]["name"]}}
        if choice["type"] == "mcp":  # the server's tool, or one of its tools (`_force_mcp`)
            forced = self._mcp_forced
            if len(forced) == 1:
                return {"type": "function", "function": {"name": forced[0]}}
            return "required" if forced else "auto"
        tool = self.deps.tools.get(choice["type"])
        assert tool is not None
        if all(t["function"]["name"] != tool.function_name for t in tools):
            return "auto"  # a hosted tool that is not offered (web search that is off)
        return {"type": "function", "function": {"name": tool.function_name}}

    def _server_calls_left(self, run: Run, items: list[Item]) -> bool:
        """Whether a response's `max_tool_calls` (built-in tool calls) allows another."""
        limit = (run.options or {}).get("max_tool_calls")
        if limit is None:
            return True
        made = sum(1 for i in items if i.run_id == run.id and i.type in SERVER_CALL_TYPES)
        return made < int(limit)

    async def _request(
        self,
        run: Run,
        route: ModelRoute,
        tools: list[dict[str, Any]],
        server_tools: dict[str, ServerTool],
    ) -> tuple[ChatRequest | None, int]:
        """The next model call, and its prompt's estimate; None when the response is only
        its context's compaction (made now)."""
        budget, reason = context.prompt_budget(run, self._window, route.max_output_tokens)
        # Closed directly rather than by `async with`, whose shielded close yields to every
        # other ready task before the model is called (the request should leave first).
        session = self.deps.reads()
        built: context.Context | None = None
        too_long: context.PromptTooLong | None = None
        try:
            if self._preloaded is not None:
                items, self._preloaded = self._preloaded, None
            else:
                reading = context.Reading.of(run, budget, reason)
                try:
                    items = await context.load(session, run, reading)
                except context.PromptTooLong as exc:
                    raise self._too_long(run, route, exc) from exc
            self.rec.context_loaded(items)
            if run.id.startswith(Prefix.RESPONSE):  # a client's tool search may load more
                tools, self._client_tools = client_calls.turn_tools(run.tools, tools, items)
            if mcp.definitions(run):
                due = mcp.work_due(run, items, approvals=not self._mcp_started)
                if due:  # no database connection is held while MCP servers answer
                    await session.close()
                offered = await self._mcp_offered(run, items)
                if due:
                    session = self.deps.reads()
                tools = [*tools, *offered.chat_tools]
                self._mcp_functions = offered.by_name
                if offered.chat_tools:
                    server_tools = {**server_tools, mcp.PREFIX: self._mcp_tool()}
            if server_tools and not self._server_calls_left(run, items):
                tools = [
                    t
                    for t in tools
                    if t["function"]["name"] not in server_tools
                    and not t["function"]["name"].startswith(mcp.PREFIX)
                ]
            choice = run.tool_choice
            if isinstance(choice, dict) and choice["type"] == "allowed_tools":
                tools = [t for t in tools if t["function"]["name"] in choice["functions"]]
            tools = self._force_mcp(run, items, tools)
            names = {f"{tool.type}_call": tool.function_name for tool in self.deps.tools.all()}
            try:
                built = await self._build(session, run, route, items, budget, reason, tools, names)
            except context.PromptTooLong as exc:
                too_long = exc
        finally:
            await session.close()
        compacting = self._compaction
        if compacting is not None and compacting.due(
            items, built.whole_tokens if built is not None else None, budget
        ):
            try:
                made = await compacting.compact(route, items, names)
            except context.PromptTooLong as exc:
                raise self._too_long(run, route, exc) from exc
            items = [*items, made]
            if compacting.only(items):
                return None, 0
            session = self.deps.reads()
            try:
                built, too_long = None, None
                built = await self._build(session, run, route, items, budget, reason, tools, names)
            except context.PromptTooLong as exc:
                too_long = exc
            finally:
                await session.close()
        if built is None:
            assert too_long is not None
            raise self._too_long(run, route, too_long)
        self._tool_called = built.tool_called
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
        top_logprobs = int((run.options or {}).get("top_logprobs") or 0)
        request = ChatRequest(
            messages=built.messages,
            tools=tools,
            tool_choice=self._tool_choice(run, tools) if tools else None,
            parallel_tool_calls=run.parallel_tool_calls if tools else None,
            temperature=run.temperature,
            top_p=run.top_p,
            max_tokens=max_tokens,
            response_format=response_format,
            reasoning_effort=run.reasoning_effort,
            logprobs=bool(top_logprobs) or OUTPUT_LOGPROBS in (run.include or ()),
            top_logprobs=top_logprobs or None,
            extra=(run.options or {}).get("chat") or {},
        )
        if route.grammar is not None and self._client_tools:
            constrain(request, route.grammar, self._client_tools)
        return request, built.prompt_tokens

    async def _build(
        self,
        session: AsyncSession,
        run: Run,
        route: ModelRoute,
        items: list[Item],
        budget: int,
        reason: str,
        tools: list[dict[str, Any]],
        names: dict[str, str],
    ) -> context.Context:
        """The turn's context; raises `PromptTooLong`."""
        try:
            return await context.build(
                session,
                self.deps.blobs,
                run,
                items,
                budget=budget,
                budget_reason=reason,
                tools=tools,
                function_names=names,
                reasoning_to_backend=route.reasoning_to_backend,
            )
        except context.MissingToolOutput as exc:
            raise RunFailure("invalid_prompt", str(exc)) from exc

    def _too_long(self, run: Run, route: ModelRoute, exc: context.PromptTooLong) -> Exception:
        if exc.reason == "max_prompt_tokens":
            return RunIncomplete("max_prompt_tokens")
        if (run.truncation_strategy or {}).get("type") == "disabled":
            return RunFailure(
                "context_length_exceeded",
                "Your input exceeds the context window of this model. Please adjust "
                "your input and try again.",
            )
        return RunFailure(
            "invalid_prompt",
            f"The conversation does not fit the context window of model '{run.model}' "
            f"({self._window} tokens): the newest message alone needs about "
            f"{exc.tokens}. Shorten it or use a model with a larger window.",
        )

    # --- MCP servers -------------------------------------------------------------------------

    def _force_mcp(
        self, run: Run, items: list[Item], tools: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The turn's tools under an MCP `tool_choice`, until the response calls a tool: the
        functions it forces are kept (`_mcp_forced`); when it forces one of several, only
        they are offered."""
        choice = run.tool_choice
        self._mcp_forced = []
        if not isinstance(choice, dict) or choice["type"] != "mcp":
            return tools
        if any(item.type in CALL_TYPES and item.run_id == run.id for item in items):
            return tools
        try:
            found = mcp.forced(run, items, mcp.Offered(by_name=self._mcp_functions), choice)
        except mcp.ChoiceUnmet as exc:
            raise RunFailure("invalid_prompt", str(exc)) from exc
        offered = {t["function"]["name"] for t in tools}
        self._mcp_forced = [name for name in found if name in offered]
        if len(self._mcp_forced) > 1:
            tools = [t for t in tools if t["function"]["name"] in self._mcp_forced]
        return tools

    def _mcp_tool(self) -> mcp.McpTool:
        tool = self.deps.tools.get("mcp")
        assert isinstance(tool, mcp.McpTool)
        return tool

    async def _mcp_offered(self, run: Run, items: list[Item]) -> mcp.Offered:
        """The MCP functions of this turn. Before the first, the calls this request's input
        approves run; a server not listed in the context yet is listed. What they make is
        written (once the response is) before the model is called, and joins `items`."""
        if not self._mcp_started:
            self._mcp_started = True
            due = mcp.approved_due(run, items)
            if due:
                await self._until_created()
                items.extend(await mcp.run_approved(run, due, self.rec, self._mcp_tool()))
        return await mcp.prepare(
            run,
            items,
            self.rec,
            self.deps.settings,
            self.deps.sealer,
            before_write=self._until_created,
        )

    # --- after a turn -------------------------------------------------------------------------

    async def _settle(
        self, run: Run, writer: EventWriter, result: TurnResult, turn_usage: dict[str, int]
    ) -> bool:
        """Record the turn; True when the run stops here (finished or waiting)."""
        await self._until_created()  # what follows writes, or runs tools
        cut_short = result.finish_reason == "length"
        if result.calls:
            if result.message is not None:
                await self._close_message(result, writer, cut_short, turn_usage, False)
            return await self._tool_calls(run, writer, result, turn_usage)
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
        if self.rec.pending_parts() and result.message is None:
            # The model ended without text after a tool made images: they still get a message.
            self._turn = Turn(self.deps, run, self.rec)
            self._turn.text("")
            await self._close_message(self._turn.result, writer, False, _usage(0, 0), True)
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
        assert result.message is not None
        values = self._closed_message(result, cut_short, annotations)
        async with writer.transaction(amend=(Item, result.message.id, values)) as session:
            await self._close_message_in(session, result, values, cut_short, usage, owns_usage)
            await writer.commit(session)

    def _closed_message(
        self, result: TurnResult, cut_short: bool, annotations: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The column values (by attribute) of the turn's message as it closes: completed, or
        cut short. The writer's transaction that closes it applies them (`amend`)."""
        message = result.message
        assert message is not None
        stamp = now()
        # Parts placed before the text (a tool's images) stay; the text gets annotated.
        leading = [part for part in message.content or [] if part["type"] != "text"]
        text: dict[str, Any] = {"value": result.text, "annotations": annotations}
        if result.logprobs:
            text["logprobs"] = result.logprobs
        values: dict[str, Any] = {"content": [*leading, {"type": "text", "text": text}]}
        if cut_short:
            values.update(
                status="incomplete",
                incomplete_at=stamp,
                incomplete_details={"reason": "max_tokens"},
            )
        else:
            values.update(status="completed", completed_at=stamp)
        return values

    async def _close_message_in(
        self,
        session: AsyncSession,
        result: TurnResult,
        values: dict[str, Any],
        cut_short: bool,
        usage: dict[str, int],
        owns_usage: bool,
    ) -> None:
        """The turn's message closes in `session` (the writer's transaction amends its row
        with `values`): the turn's copy takes them, back to what it was if the transaction
        does not commit (a hand-back then keeps the text streamed so far)."""
        message = result.message
        assert message is not None
        before = {key: getattr(message, key) for key in values}

        def outcome(committed: bool) -> None:
            if not committed:
                for key, value in before.items():
                    setattr(message, key, value)

        on_outcome(session, outcome)
        for key, value in values.items():
            setattr(message, key, value)
        await self.rec.message_closed(
            session, message, cut_short=cut_short, usage=usage, owns_usage=owns_usage
        )

    async def _tool_calls(
        self, run: Run, writer: EventWriter, result: TurnResult, usage: dict[str, int]
    ) -> bool:
        functions = {t["function"]["name"] for t in run.tools if t["type"] == "function"}
        functions |= set(self._client_tools)
        self.rec.calls_streamed(result.calls)
        outcomes: list[CallOutcome] = []
        for position, call in enumerate(result.calls):
            if call.item.type == "mcp_approval_request":
                outcomes.append(CallOutcome(call))  # the response ends: its client decides
                continue
            if call.tool is not None:
                ctx = await self._tool_context(run, call, position)
                try:
                    done = await call.tool.execute(ctx, call.id, call.arguments)
                except ToolUnavailable as exc:  # the call fails, the model reads why
                    log.warning("run %s: %s call failed: %s", run.id, call.tool.type, exc)
                    done = call.tool.failure(call.id, call.arguments, f"Error: {exc}")
                self._tool_results.append((call.tool, ctx, done))
                call.item.data = {
                    **(call.item.data or {}),
                    **server_call_data(done.item_data, call.name, call.arguments, done.output),
                }
                self.rec.tool_done(call, position, done)
                outcomes.append(CallOutcome(call, result=done))
                continue
            call.item.data = client_calls.call_data(call.client, call.name, call.arguments)
            output = None
            if call.name not in functions:
                output = f"Error: there is no tool named '{call.name}'."
            outcomes.append(CallOutcome(call, output=output))
        waiting = any(o.result is None and o.output is None for o in outcomes)
        stamp = now()
        async with writer.transaction() as session:
            for outcome in outcomes:
                item = outcome.call.item
                item.status = "failed" if outcome.result and outcome.result.failed else "completed"
                await repository.update_item(
                    session, item.id, {"status": item.status, "data": item.data}
                )
                if outcome.output is not None:
                    session.add(
                        new_item(
                            run.project,
                            "function_call_output",
                            thread_id=self.rec.items_thread_id,
                            run_id=run.id,
                            call_id=outcome.call.id,
                            data={"output": outcome.output},
                        )
                    )
            await self.rec.calls_closed(session, run, outcomes, usage, waiting=waiting)
            if waiting and self.rec.waits_for_outputs:
                moved = await state.transition(
                    session,
                    run.id,
                    RunStatus.IN_PROGRESS,
                    RunStatus.REQUIRES_ACTION,
                    held_by=self.worker_id,
                    required_action=_required_action(outcomes),
                    expires_at=stamp + self.deps.settings.run_expiry_seconds,
                    **self._counters(run),
                )
                if moved is None:
                    writer.discard_staged()
                    await session.rollback()
                    await self._lost_race(run, writer)
                    return True
                self.rec.requires_action(moved)
                await writer.commit(session, fence=False)  # the transition guards
                return True
            await self._save_counters(session, run)
            await writer.commit(session)
        if waiting:  # a response ends with the calls its client must answer
            await self._finish(run, writer, RunStatus.COMPLETED)
            return True
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

    async def _tool_context(self, run: Run, call: Any, position: int) -> ToolContext:
        tool = call.tool
        async with self.deps.reads() as session:
            assistant = await session.get(Assistant, run.assistant_id) if run.assistant_id else None
            thread = await session.get(Thread, run.thread_id) if run.thread_id else None
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
        if tool.type == "mcp":
            label = str((call.item.data or {}).get("server_label", ""))
            definition = mcp.definition_for(run, label) or definition
        return ToolContext(
            project=run.project,
            thread_id=run.thread_id or run.id,
            run_id=run.id,
            assistant_id=run.assistant_id or "",
            tool_definition=definition,
            tool_resources=merged,
            sessions=self.deps.sessions,
            blobs=self.deps.blobs,
            settings=self.deps.settings,
            include=list(run.include or []),
            emit_delta=lambda delta: self.rec.tool_delta(call, position, delta),
            call=dict(call.item.data or {}),
            container_id=(run.options or {}).get("container_id"),
            # made with the response; a retry may find what the first attempt started
            new_container=bool((run.options or {}).get("container_new")) and run.attempts == 1,
            context_window=self._window,
        )

    # --- ends -----------------------------------------------------------------------------------

    def _counters(self, run: Run) -> dict[str, Any]:
        return {
            "model_turns": run.model_turns,
            "prompt_tokens": run.prompt_tokens,
            "completion_tokens": run.completion_tokens,
        }

    async def _save_counters(self, session: AsyncSession, run: Run) -> None:
        await repository.update_run(session, run.id, self._counters(run))

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
        """Close open items, then move the run to its terminal `status`.

        `closing` is the last turn, whose message (if cut short, `True`) and usage are closed
        in the same transaction. `cause` is the unexpected exception that failed the run (its
        traceback goes with the run's failure line in the log).
        """
        await self._until_created()
        last_message = None
        amend = None
        if closing is not None and closing[0].message is not None:
            annotations = await self._annotations(closing[0].text)
            last_message = self._closed_message(closing[0], closing[1], annotations)
            amend = (Item, closing[0].message.id, last_message)
        totals = _usage(run.prompt_tokens, run.completion_tokens)
        reasoned = self._reasoning_tokens
        if self._compaction is not None:
            reasoned += self._compaction.reasoning_tokens
        if self.rec.keeps_reasoning and reasoned:
            totals["reasoning_tokens"] = reasoned
        fields: dict[str, Any] = {"usage": totals, **self._counters(run)}
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
        if self._turn is not None:
            partial_text.update(self._turn.open_reasoning())
        async with writer.transaction(amend=amend) as session:
            if closing is not None and last_message is not None:
                result, cut_short, usage = closing
                await self._close_message_in(session, result, last_message, cut_short, usage, True)
            # A first execution that completes has closed every item it opened (the last
            # turn's just above); otherwise look for what was left open.
            closed: Sequence[Item] = ()
            if status is not RunStatus.COMPLETED or run.attempts > 1:
                closed = await finish.close_open_items(
                    session, run, status.value, partial_text=partial_text
                )
            await self.rec.closing(session, run, status.value, closed, error)
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
            await self.rec.ended(session, moved)
            await writer.commit(session, fence=False)  # the transition guards

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
        """Shutdown, or the database failing: give the run back to the queue, and wake a
        worker to take it."""
        await self._until_created()
        writer.release()
        with contextlib.suppress(Exception):  # events that could not be stored stay unstored
            await writer.flush()
        partial = self._turn.result if self._turn is not None else None
        async with self.deps.sessions() as session:
            if (
                partial is not None
                and partial.message is not None
                and partial.message.status == "in_progress"
            ):
                # The text streamed so far stays: the next attempt closes the message with it.
                leading = [p for p in partial.message.content or [] if p["type"] != "text"]
                content = [*leading, stored_text(partial.text)]
                await repository.update_item(session, partial.message.id, {"content": content})
            queued = await state.transition(
                session, run.id, RunStatus.IN_PROGRESS, RunStatus.QUEUED, held_by=self.worker_id
            )
            if queued is not None:
                for name, payload in surface_of(run.id).requeued(queued):
                    writer.stage(name, payload)
                run_queued_on_commit(session, self.deps.signals)
            await writer.commit(session, fence=False)  # the transition guards


def _required_action(outcomes: list[CallOutcome]) -> dict[str, Any]:
    waiting = [
        {
            "id": o.call.id,
            "type": "function",
            "function": {"name": o.call.name, "arguments": o.call.arguments},
        }
        for o in outcomes
        if o.result is None and o.output is None
    ]
    return {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": waiting}}

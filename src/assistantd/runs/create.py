"""Create a run (on a thread, or with a new thread): resolve its settings and queue it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.assistants import service as assistants
from assistantd.backends.routing import ModelRouter
from assistantd.db.core import insert_into, row_values, table_of
from assistantd.db.models import Assistant, Item, Run, Thread
from assistantd.errors import InvalidRequestError
from assistantd.kit.ids import Prefix, check_prefix, created_at_of, new_id
from assistantd.messages import service as messages
from assistantd.runs import admission, events
from assistantd.runs.guard import ensure_no_active_run
from assistantd.runs.recorder import surface_of
from assistantd.runs.schemas import RunCreate, ThreadAndRunCreate, ToolChoiceFunction, _RunOptions
from assistantd.runs.signals import Signals, give_way, run_queued_on_commit
from assistantd.runs.state import RunStatus
from assistantd.settings import Settings
from assistantd.threads import service as threads
from assistantd.tools import resources
from assistantd.tools.schemas import dump_response_format, dump_tools


def _instructions(base: str | None, additional: str | None) -> str:
    parts = [p for p in (base, additional) if p]
    return "\n\n".join(parts)


def _check_tool_choice(tool_choice: Any, tools: list[dict[str, Any]]) -> Any:
    if tool_choice is None:
        return "auto"
    if isinstance(tool_choice, str):
        return tool_choice
    if isinstance(tool_choice, ToolChoiceFunction):
        names = {t["function"]["name"] for t in tools if t["type"] == "function"}
        if tool_choice.function.name not in names:
            raise InvalidRequestError(
                f"Invalid 'tool_choice': function '{tool_choice.function.name}' is not one of "
                "the run's tools.",
                param="tool_choice",
            )
    elif tool_choice.type not in {t["type"] for t in tools}:
        raise InvalidRequestError(
            f"Invalid 'tool_choice': the run has no '{tool_choice.type}' tool.",
            param="tool_choice",
        )
    return tool_choice.model_dump()


def _new_run(
    body: _RunOptions,
    assistant: Assistant,
    thread: Thread,
    models: ModelRouter,
    settings: Settings,
    *,
    additional_instructions: str | None = None,
) -> Run:
    model = body.model or assistant.model
    if not models.can_serve(model):
        raise InvalidRequestError(
            f"The model '{model}' does not exist or no backend serves it.",
            param="model",
            code="model_not_found",
        )
    tools = dump_tools(body.tools) if body.tools is not None else list(assistant.tools)
    base = body.instructions if body.instructions is not None else assistant.instructions
    run_id = new_id(Prefix.RUN)
    created = created_at_of(run_id)
    truncation = (
        body.truncation_strategy.model_dump()
        if body.truncation_strategy
        else {"type": "auto", "last_messages": None}
    )
    return Run(
        id=run_id,
        project=thread.project,
        created_at=created,
        thread_id=thread.id,
        assistant_id=assistant.id,
        status=RunStatus.QUEUED.value,
        model=model,
        instructions=_instructions(base, additional_instructions),
        tools=tools,
        metadata_=body.metadata or {},
        temperature=body.temperature if body.temperature is not None else assistant.temperature,
        top_p=body.top_p if body.top_p is not None else assistant.top_p,
        reasoning_effort=body.reasoning_effort or assistant.reasoning_effort,
        max_prompt_tokens=body.max_prompt_tokens,
        max_completion_tokens=body.max_completion_tokens,
        truncation_strategy=truncation,
        tool_choice=_check_tool_choice(body.tool_choice, tools),
        parallel_tool_calls=body.parallel_tool_calls,
        response_format=dump_response_format(body.response_format)
        or assistant.response_format
        or "auto",
        include=None,
        expires_at=created + settings.run_expiry_seconds,
        attempts=0,
        model_turns=0,
        prompt_tokens=0,
        completion_tokens=0,
    )


async def _assistant(session: AsyncSession, project: str, assistant_id: str) -> Assistant:
    check_prefix(assistant_id, Prefix.ASSISTANT, "assistant_id")
    return await assistants.require(session, project, assistant_id)


class RunTaker(Protocol):
    """A worker in this process that can start a run the moment it is created."""

    def take(self, run: Run) -> Run | None: ...

    def has_room(self, project: str, limit: int) -> bool: ...

    def start_on_commit(self, session: AsyncSession, run: Run, last_seq: int) -> None: ...

    def start_early(
        self,
        session: AsyncSession,
        run: Run,
        last_seq: int,
        context: Sequence[Item],
        *,
        opening: list[dict[str, Any]] | None = None,
    ) -> None: ...


async def queue(
    session: AsyncSession,
    signals: Signals,
    run: Run,
    first_events: list[tuple[str, events.Payload]],
    worker: RunTaker | None,
    *,
    limit: int,
    context: Sequence[Item] | None = None,
    rows: Sequence[Item] = (),
    read_only_here: bool = False,
) -> Run:
    """Store a new run (or response) and its first events, unless its project has `limit`
    active already (a 429, see `admission`). It is answered as created (queued);
    a worker of this process may take it at once, in this transaction. `context`, when the
    caller knows all of it (items it is inserting in this transaction), is the first turn's
    items: the run then starts before this transaction commits, its model request overlapping
    the commit (see `RunTaker.start_early`). `rows` are items to insert with the run (after
    it). `read_only_here`: nobody but the creating request reads the run's event log (an
    unstored response): started early, its first events are then published at the commit and
    stored by its executor with what it writes first (`events.hand_over`), one insert fewer
    before the first token; a stored run's log has them from its creation on."""
    taken = worker.take(run) if worker is not None else None
    early = context is not None and taken is not None
    # A run to start at once, of a project this process runs few of (`RunTaker.has_room`),
    # sends its model request before the count that admits it: the count is then off the way
    # to the first token. If it refuses (other processes hold the rest of the limit), the
    # creation rolls back and the request is cancelled as soon as it left. Otherwise no
    # model request starts before the run is admitted.
    ahead = early and worker is not None and worker.has_room(run.project, limit)
    if not ahead:
        await admission.admit(session, run.project, limit, may_start=worker is not None)
    surface = surface_of(run.id)
    announced = [*first_events, *surface.created(run)]
    opening: list[dict[str, Any]] | None = None
    if taken is not None:
        announced += await surface.claimed(session, taken)
        if context is not None:
            assert worker is not None
            opening = [] if read_only_here else None
            worker.start_early(session, taken, len(announced), context, opening=opening)
            await give_way()  # its request leaves before the statements below
            if ahead:
                await admission.admit(session, run.project, limit, may_start=True)
    # A plain INSERT of the row the caller built (claimed, if taken): the ORM's unit of work
    # costs more than it.
    await session.execute(insert_into(table_of(Run)), [row_values(taken or run)])
    if early:
        await give_way(2)
    if opening is not None:
        opening += events.hand_over(session, signals, run.id, announced)
        last_seq = len(announced)
    else:
        last_seq = await events.append(session, signals, run.id, announced, last_seq=0)
    if rows:
        if early:
            await give_way(2)
        await session.execute(insert_into(table_of(Item)), [row_values(row) for row in rows])
    if early:
        await give_way(2)
    if taken is None:
        run_queued_on_commit(session, signals)
    elif context is None:
        assert worker is not None
        worker.start_on_commit(session, taken, last_seq)
    await admission.settle(session, run.project, limit)
    return run


async def create_run(
    session: AsyncSession,
    thread: Thread,
    body: RunCreate,
    *,
    include: list[str] | None,
    models: ModelRouter,
    settings: Settings,
    signals: Signals,
    worker: RunTaker | None = None,
) -> Run:
    assistant = await _assistant(session, thread.project, body.assistant_id)
    await ensure_no_active_run(session, thread.id, for_run=True)
    run = _new_run(
        body,
        assistant,
        thread,
        models,
        settings,
        additional_instructions=body.additional_instructions,
    )
    run.include = include
    run.options = {"stream": bool(body.stream)}
    for message in body.additional_messages or []:
        await messages.create_from_request(session, thread, message)
    limit = settings.project_max_active_runs
    return await queue(session, signals, run, [], worker, limit=limit)


async def create_thread_and_run(
    session: AsyncSession,
    project: str,
    body: ThreadAndRunCreate,
    *,
    models: ModelRouter,
    settings: Settings,
    signals: Signals,
    worker: RunTaker | None = None,
) -> tuple[Thread, Run]:
    assistant = await _assistant(session, project, body.assistant_id)
    thread = await threads.create_thread(session, project, body.thread)
    if body.tool_resources is not None:
        run_resources = await resources.resolve(session, project, body.tool_resources)
        thread.tool_resources = {**(run_resources or {}), **(thread.tool_resources or {})}
        await session.flush()
    run = _new_run(body, assistant, thread, models, settings)
    run.options = {"stream": bool(body.stream)}
    created: list[tuple[str, events.Payload]] = [("thread.created", threads.render(thread))]
    await queue(session, signals, run, created, worker, limit=settings.project_max_active_runs)
    return thread, run

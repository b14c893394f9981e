"""HTTP routes for runs and run steps."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from assistantd.deps import (
    PageDep,
    ProjectDep,
    RunDep,
    SessionDep,
    SettingsDep,
    StepDep,
    ThreadDep,
)
from assistantd.kit.pagination import list_response
from assistantd.kit.schemas import INT64_MAX, ListResponse, WireResponse
from assistantd.kit.sse import EventStreamResponse
from assistantd.kit.streams import StreamSlot, StreamSlots
from assistantd.runs import cancel as cancel_use_case
from assistantd.runs import create, render, repository, stream
from assistantd.runs import submit_tool_outputs as submit_use_case
from assistantd.runs.schemas import (
    FILE_SEARCH_CONTENT,
    Include,
    RunCreate,
    RunModify,
    RunObject,
    RunStepObject,
    SubmitToolOutputs,
    ThreadAndRunCreate,
)

router = APIRouter(tags=["runs"])

IncludeQuery = Annotated[list[Include] | None, Query(alias="include[]")]


def _event_stream(
    request: Request,
    run_id: str,
    after_seq: int,
    slot: StreamSlot | None,
    *,
    before_commit: bool = True,
) -> EventStreamResponse:
    """Stream the run's events after `after_seq` in the project's stream `slot`; by default
    called before the request commits."""
    state = request.app.state
    frames = stream.open_stream(
        state.query_sessions, state.signals, run_id, after_seq, before_commit=before_commit
    )
    return EventStreamResponse(frames, slot)


def _streams(request: Request) -> StreamSlots:
    streams: StreamSlots = request.app.state.streams
    return streams


def _poll_hint(response: Response, settings: SettingsDep) -> None:
    response.headers["openai-poll-after-ms"] = str(settings.poll_after_ms)


@router.post("/threads/runs", response_model=None)
async def create_thread_and_run(
    body: ThreadAndRunCreate,
    request: Request,
    session: SessionDep,
    project: ProjectDep,
    settings: SettingsDep,
) -> Response:
    """Create a thread and run it in one request."""
    state = request.app.state
    # A stream's place is taken first: a refused stream creates nothing.
    async with _streams(request).opening(project, bool(body.stream)) as slot:
        _, run = await create.create_thread_and_run(
            session,
            project,
            body,
            models=state.models,
            settings=settings,
            signals=state.signals,
            worker=state.worker,
        )
    if body.stream:
        return _event_stream(request, run.id, 0, slot)
    return WireResponse(render.run(run))


@router.post("/threads/{thread_id}/runs", response_model=None)
async def create_run(
    thread: ThreadDep,
    body: RunCreate,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    include: IncludeQuery = None,
) -> Response:
    """Create a run."""
    state = request.app.state
    async with _streams(request).opening(thread.project, bool(body.stream)) as slot:
        run = await create.create_run(
            session,
            thread,
            body,
            include=list(include) if include else None,
            models=state.models,
            settings=settings,
            signals=state.signals,
            worker=state.worker,
        )
    if body.stream:
        return _event_stream(request, run.id, 0, slot)
    return WireResponse(render.run(run))


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread: ThreadDep, session: SessionDep, page: PageDep
) -> ListResponse[RunObject]:
    """List the runs of a thread."""
    rows, has_more = await repository.list_page(session, thread.id, page)
    return list_response(rows, has_more, render.run)


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(run: RunDep, response: Response, settings: SettingsDep) -> RunObject:
    """Retrieve a run."""
    _poll_hint(response, settings)
    return render.run(run)


@router.post("/threads/{thread_id}/runs/{run_id}")
async def modify_run(run: RunDep, body: RunModify, session: SessionDep) -> RunObject:
    """Modify a run's metadata."""
    if "metadata" in body.model_fields_set:
        run.metadata_ = body.metadata or {}
        await session.flush()
    return render.run(run)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(run: RunDep, request: Request, session: SessionDep) -> RunObject:
    """Cancel a run."""
    return render.run(await cancel_use_case.cancel(session, run, signals=request.app.state.signals))


@router.post("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", response_model=None)
async def submit_tool_outputs(
    run: RunDep, body: SubmitToolOutputs, request: Request, session: SessionDep
) -> Response:
    """Submit the outputs of the run's function calls."""
    after_seq = await repository.last_seq(session, run.id)
    async with _streams(request).opening(run.project, bool(body.stream)) as slot:
        state = request.app.state
        run = await submit_use_case.submit_tool_outputs(
            session,
            run,
            body,
            signals=state.signals,
            limit=state.settings.project_max_active_runs,
        )
    if body.stream:
        return _event_stream(request, run.id, after_seq, slot)
    return WireResponse(render.run(run))


@router.get("/threads/{thread_id}/runs/{run_id}/events", response_model=None)
async def run_events(
    run: RunDep, request: Request, after: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0
) -> EventStreamResponse:
    """assistantd extension: (re-)attach to a run's event stream after sequence number `after`."""
    slot = await _streams(request).take(run.project)
    return _event_stream(request, run.id, after, slot, before_commit=False)


@router.get("/threads/{thread_id}/runs/{run_id}/steps")
async def list_run_steps(
    run: RunDep, session: SessionDep, page: PageDep, include: IncludeQuery = None
) -> ListResponse[RunStepObject]:
    """List the steps of a run."""
    rows, has_more = await repository.list_steps(session, run.id, page)
    full = bool(include and FILE_SEARCH_CONTENT in include)
    return list_response(rows, has_more, lambda s: render.step(s, include_search_content=full))


@router.get("/threads/{thread_id}/runs/{run_id}/steps/{step_id}")
async def get_run_step(step: StepDep, include: IncludeQuery = None) -> RunStepObject:
    """Retrieve a run step."""
    full = bool(include and FILE_SEARCH_CONTENT in include)
    return render.step(step, include_search_content=full)

"""HTTP routes of the Responses API."""

from __future__ import annotations

from collections.abc import Awaitable
from functools import partial
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from assistantd.containers.owned import delete_owned
from assistantd.deps import BlobsDep, PageDep, ProjectDep, SandboxesDep, SessionDep
from assistantd.items import render as items
from assistantd.kit.pagination import list_response
from assistantd.kit.schemas import DeletedObject, ListResponse, WireResponse
from assistantd.kit.sse import EventStreamResponse
from assistantd.responses import compact, create, render, repository, service
from assistantd.responses.schemas import (
    CompactedResponseObject,
    CompactRequest,
    CreateResponse,
    Include,
    InputTokensObject,
    InputTokensRequest,
    ResponseObject,
)
from assistantd.runs import context

router = APIRouter(tags=["responses"])

IncludeQuery = Annotated[list[Include] | None, Query(alias="include[]")]


class AwaitedResponse(Response):
    """A response whose status and body are known only once `outcome` finishes, after the
    request's transaction has committed (the run it waits for starts on that commit)."""

    media_type = "application/json"

    def __init__(self, outcome: Awaitable[tuple[int, bytes]]) -> None:
        super().__init__()
        self._outcome = outcome

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.status_code, self.body = await self._outcome
        self.init_headers()
        await super().__call__(scope, receive, send)


@router.post("/responses", response_model=None)
async def create_response(
    body: CreateResponse, request: Request, session: SessionDep, project: ProjectDep
) -> Response:
    """Create a model response."""
    state = request.app.state
    # A stream's place is taken first: a refused stream creates nothing.
    async with state.streams.opening(project, bool(body.stream)) as slot:
        run = await create.create_response(
            session,
            project,
            body,
            models=state.models,
            signals=state.signals,
            worker=state.worker,
            sealer=state.sealer,
            settings=state.settings,
        )
    # An unstored response is removed after its request has its answer.
    forget = state.forgetter if body.store is False else None
    if body.stream:
        frames = service.events_after(
            state.query_sessions, state.signals, run.id, None, before_commit=True
        )
        # Once the whole stream is sent (a client that left may come back for it: the sweep
        # removes it later), without a generator around every frame.
        then = partial(forget.forget, run.id) if forget is not None else None
        return EventStreamResponse(frames, slot, then=then)
    if body.background:
        return WireResponse(render.response(run))
    outcome = service.outcome(state.query_sessions, state.signals, run.id, forget=forget)
    return AwaitedResponse(outcome)


@router.post("/responses/input_tokens")
async def count_input_tokens(
    body: InputTokensRequest,
    request: Request,
    session: SessionDep,
    project: ProjectDep,
    blobs: BlobsDep,
) -> InputTokensObject:
    """Count the input tokens a response would start with."""
    state = request.app.state
    tokens = await service.input_tokens(
        session, blobs, project, body, state.models, state.sealer, state.settings, state.windows
    )
    return InputTokensObject(input_tokens=tokens)


@router.post("/responses/compact")
async def compact_response(
    body: CompactRequest, request: Request, project: ProjectDep, blobs: BlobsDep
) -> CompactedResponseObject:
    """Compact a context into its user messages and one encrypted summary."""
    state = request.app.state
    return await compact.compact(
        state.query_sessions,
        project,
        body,
        models=state.models,
        backend=state.backend,
        windows=state.windows,
        sealer=state.sealer,
        blobs=blobs,
    )


@router.get("/responses/{response_id}", response_model=None)
async def get_response(
    response_id: str,
    request: Request,
    session: SessionDep,
    project: ProjectDep,
    include: IncludeQuery = None,
    stream: Annotated[bool, Query()] = False,
    starting_after: Annotated[int | None, Query(ge=0, le=2_147_483_647)] = None,
    include_obfuscation: Annotated[bool | None, Query()] = None,
) -> Response:
    """Retrieve a response, or (`stream=true`) stream its events from the start or from
    `starting_after`."""
    if stream:
        run = await service.require(session, project, response_id)
        state = request.app.state
        slot = await state.streams.take(project)
        return EventStreamResponse(
            service.events_after(
                state.query_sessions, state.signals, run.id, starting_after, before_commit=False
            ),
            slot,
        )
    # Polled: the response and its output in one statement.
    run, output = await service.require_with_output(session, project, response_id)
    return WireResponse(await render.full(session, run, frozenset(include or ()), output=output))


@router.delete("/responses/{response_id}")
async def delete_response(
    response_id: str,
    session: SessionDep,
    project: ProjectDep,
    blobs: BlobsDep,
    sandboxes: SandboxesDep,
    background: BackgroundTasks,
) -> DeletedObject:
    """Delete a response, and the auto container it started (outside a conversation)."""
    run = await service.require(session, project, response_id)
    await service.delete(session, run)
    await delete_owned(
        session,
        project,
        run.id,
        blobs=blobs,
        sandboxes=sandboxes,
        after_commit=background.add_task,
    )
    return DeletedObject(id=run.id, object="response.deleted")


@router.post("/responses/{response_id}/cancel")
async def cancel_response(
    response_id: str, request: Request, session: SessionDep, project: ProjectDep
) -> ResponseObject:
    """Cancel a background response."""
    run = await service.require(session, project, response_id)
    state = request.app.state
    run = await service.cancel(session, state.query_sessions, run, signals=state.signals)
    return await render.full(session, run)


@router.get("/responses/{response_id}/input_items")
async def list_input_items(
    response_id: str,
    session: SessionDep,
    project: ProjectDep,
    page: PageDep,
    include: IncludeQuery = None,
) -> ListResponse[dict]:  # type: ignore[type-arg]
    """List the items a response was given."""
    run = await service.require(session, project, response_id)
    chain = (await context.response_chain(session, project, run.id))[1:]
    rows, has_more = await repository.input_items(session, run, chain, page)
    files = await items.filenames(session, rows)
    wanted = frozenset(include or ())
    return list_response(rows, has_more, lambda row: items.item(row, wanted, files))

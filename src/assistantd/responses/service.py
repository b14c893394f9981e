"""Response use cases after creation: read, stream, wait for, cancel, delete, count tokens."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.backends.routing import ModelRouter
from assistantd.backends.tokens import estimate_message_tokens, estimate_tools_tokens
from assistantd.backends.windows import ContextWindows
from assistantd.blobs.store import BlobStore
from assistantd.db.models import Item, Run
from assistantd.errors import InvalidRequestError, NotFoundError
from assistantd.items import client_calls, convert
from assistantd.items.schemas import MessageItem
from assistantd.kit.ids import Prefix, new_id
from assistantd.kit.sealed import Sealer
from assistantd.kit.timeutil import now
from assistantd.responses import create, render, repository, tools
from assistantd.responses.schemas import InputTokensRequest
from assistantd.responses.surface import RESPONSES
from assistantd.responses.unstored import Forgetter
from assistantd.runs import context, events, state, stream
from assistantd.runs.signals import FeedEvent, Signals, notify_run_changed
from assistantd.runs.state import RunStatus
from assistantd.settings import Settings

ENDING = stream.Ending(
    frozenset(
        {"response.completed", "response.failed", "response.incomplete", "response.cancelled"}
    ),
    None,
)
# Failures that are the request's fault: a foreground request that waits for its response gets
# them as a 400, as OpenAI answers them, rather than a failed response.
_REQUEST_FAULTS = frozenset({"context_length_exceeded", "invalid_prompt"})
# How long a cancel waits for the worker to stop a running response.
_CANCEL_WAIT_SECONDS = 5.0


async def require(session: AsyncSession, project: str, response_id: str) -> Run:
    row = await repository.get(session, project, response_id)
    if row is None:
        raise NotFoundError(f"Response with id '{response_id}' not found.")
    return row


async def require_with_output(
    session: AsyncSession, project: str, response_id: str
) -> tuple[Run, list[Item]]:
    """`require`, with the response's output items (one statement)."""
    found = await repository.get_with_output(session, project, response_id)
    if found is None:
        raise NotFoundError(f"Response with id '{response_id}' not found.")
    return found


def events_after(
    sessions: async_sessionmaker[AsyncSession],
    signals: Signals,
    response_id: str,
    starting_after: int | None,
    *,
    before_commit: bool,
) -> AsyncIterator[str]:
    """The response's events as SSE, after sequence number `starting_after` (all without)."""
    after = 0 if starting_after is None else starting_after + 1
    return stream.open_stream(
        sessions, signals, response_id, after, before_commit=before_commit, ending=ENDING
    )


def outcome(
    sessions: async_sessionmaker[AsyncSession],
    signals: Signals,
    response_id: str,
    *,
    forget: Forgetter | None = None,
) -> Awaitable[tuple[int, bytes]]:
    """Wait for the response to end: the HTTP status and body a foreground request answers
    with (its last event's response, or a 400 for a request fault). Call it inside the
    transaction that creates the response: it listens from then on. With `forget`, an
    unstored response is handed to it once it has ended (it removes it after the answer)."""
    batches = stream.open_events(
        sessions, signals, response_id, 0, before_commit=True, ending=ENDING
    )
    return _last_response(batches, forget, response_id)


async def _last_response(
    batches: AsyncIterator[list[FeedEvent]], forget: Forgetter | None, response_id: str
) -> tuple[int, bytes]:
    last = None
    async for batch in batches:
        if batch:
            last = batch[-1]
    assert last is not None
    if forget is not None:
        forget.forget(response_id)
    payload = json.loads(last.data)["response"]
    error = payload.get("error") or {}
    if (
        payload["status"] == "failed"
        and not payload["output"]
        and error.get("code") in _REQUEST_FAULTS
    ):
        code = error.get("code")
        body = {
            "error": {
                "message": error.get("message"),
                "type": "invalid_request_error",
                "param": "input",
                "code": code if code != "invalid_prompt" else None,
            }
        }
        return 400, json.dumps(body).encode()
    return 200, json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


async def cancel(
    session: AsyncSession,
    reads: async_sessionmaker[AsyncSession],
    run: Run,
    *,
    signals: Signals,
) -> Run:
    """Cancel a background response: at once when no worker holds it, else ask the worker to
    stop and wait (a few seconds at most) for it to. One that has ended already is returned as
    it ended (OpenAI: cancelling twice returns the final response)."""
    if not (run.options or {}).get("background"):
        raise InvalidRequestError(
            "Cannot cancel a synchronous response: only responses created with "
            "'background': true can be cancelled."
        )
    current = RunStatus(run.status)
    if current in state.TERMINAL:
        return run
    if current is RunStatus.QUEUED:
        moved = await state.transition(session, run.id, current, RunStatus.CANCELLED)
        if moved is not None:
            ended = await RESPONSES.ended_outside(session, moved, None)
            await events.append(session, signals, run.id, ended)
            return moved
        await session.refresh(run)
        return await cancel(session, reads, run, signals=signals)
    if current is RunStatus.IN_PROGRESS:
        if await state.transition(session, run.id, current, RunStatus.CANCELLING):
            await notify_run_changed(session, signals, run.id)
    await session.commit()
    deadline = time.monotonic() + _CANCEL_WAIT_SECONDS
    while time.monotonic() < deadline:
        async with reads() as fresh:
            latest = await repository.get(fresh, run.project, run.id)
        if latest is None or latest.status in state.TERMINAL:
            return latest or run
        await asyncio.sleep(0.05)
    await session.refresh(run)
    return run


async def sweep_unstored(sessions: async_sessionmaker[AsyncSession], *, limit: int = 200) -> int:
    """Remove unstored responses their request did not (it went away, or its process stopped
    first; a minute after creation at the earliest). One unit of work for a periodic
    maintenance task. Not those a WebSocket connection keeps (`responses.kept`): it removes
    them when it ends, and moves their `kept_until` on while it lasts."""
    async with sessions() as session:
        rows = await repository.unstored_finished(session, now() - 60, limit, at=time.time())
        for run in rows:
            await repository.delete_response(session, run)
        await session.commit()
    return len(rows)


async def delete(session: AsyncSession, run: Run) -> None:
    if run.status not in state.TERMINAL:
        raise InvalidRequestError(
            f"Cannot delete response {run.id} while it is {render.status(run)}; "
            "cancel it or wait for it to finish."
        )
    await repository.delete_response(session, run)


async def input_tokens(
    session: AsyncSession,
    blobs: BlobStore,
    project: str,
    body: InputTokensRequest,
    models: ModelRouter,
    sealer: Sealer,
    settings: Settings,
    windows: ContextWindows,
) -> int:
    """The prompt tokens a response with this request would start with (instructions, the
    chain's or conversation's items, the input, and the tool definitions): with `truncation:
    auto` what fits the model's window, else all of it, or a 400 `context_length_exceeded`
    when that does not fit."""
    create._check_exclusive(body)
    route = create.model_route(models, body.model) if body.model is not None else None
    engine_tools = tools.convert(body.tools, settings).engine
    thread_id = None
    chain: list[str] = []
    conversation = create.conversation_id(body.conversation)
    if conversation is not None:
        thread_id = (await create.require_conversation(session, project, conversation)).id
    if body.previous_response_id is not None:
        await create.previous_response(session, project, body.previous_response_id)
        chain = await context.response_chain(session, project, body.previous_response_id)
    given = body.input
    if isinstance(given, str):
        given = [MessageItem(role="user", content=given)]
    given, _ = create.split_trigger(given or [])
    probe = new_id(Prefix.RESPONSE)
    rows = await convert.rows(session, project, given, input_of=probe, sealer=sealer)
    run = Run(
        id=probe,
        project=project,
        instructions=body.instructions,
        truncation_strategy={"type": body.truncation or "disabled"},
        max_prompt_tokens=None,
        prompt_tokens=0,
    )
    window = None if route is None else await windows.of(route)
    output = None if route is None else route.max_output_tokens
    budget, reason = context.prompt_budget(run, window, output)
    try:
        earlier = await context.items_of(
            session,
            thread_id=thread_id,
            responses=list(reversed(chain)),
            reading=context.Reading.of(run, budget, reason),
        )
        built = await context.build(
            session, blobs, run, [*earlier, *rows], budget=budget, budget_reason=reason
        )
    except context.MissingToolOutput as exc:
        raise InvalidRequestError(str(exc), param="input") from exc
    except context.PromptTooLong as exc:
        raise InvalidRequestError(
            "Your input exceeds the context window of this model. Please adjust your input "
            "and try again.",
            param="input",
            code="context_length_exceeded",
        ) from exc
    offered = [t for t in engine_tools if t["type"] == "function" and not t.get("deferred")]
    loaded = client_calls.loaded([*earlier, *rows])  # by a client's tool search
    definitions = [
        {"type": "function", "function": {k: v for k, v in t["function"].items() if v is not None}}
        for t in [*offered, *loaded]
    ]
    return estimate_message_tokens(built.messages) + estimate_tools_tokens(definitions)

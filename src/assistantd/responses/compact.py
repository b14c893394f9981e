"""Compact a context: `POST /responses/compact`.

The context (a response chain's items, then `input`) is summarised by the model the request
names (see `runs.compaction`), and answered as a `response.compaction` object: the context's
user messages, then one `compaction` item whose `encrypted_content` seals the summary. The
client passes that output as (the start of) its next input. Nothing is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.backends.chat import BackendError, ChatBackend
from assistantd.backends.routing import ModelRoute, ModelRouter
from assistantd.backends.tokens import estimate_message_tokens
from assistantd.backends.windows import ContextWindows
from assistantd.blobs.store import BlobStore
from assistantd.db.models import Item, Run
from assistantd.errors import (
    APIError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from assistantd.items import convert
from assistantd.items import render as items
from assistantd.items.schemas import InputItem, MessageItem
from assistantd.kit.ids import Prefix, created_at_of, new_id
from assistantd.kit.sealed import Sealer
from assistantd.responses import create, repository
from assistantd.responses.schemas import CompactedResponseObject, CompactRequest, TextFormatText
from assistantd.runs import compaction, context
from assistantd.runs.state import TERMINAL

# How the summary's length follows `text.verbosity`.
_VERBOSITY = {
    "low": "Keep the summary short: only what the work cannot continue without.",
    "high": "Err on the side of detail: keep every fact that may matter later.",
}


def _check(body: CompactRequest, models: ModelRouter) -> ModelRoute:
    if not body.model:
        raise InvalidRequestError(
            "Missing required parameter: 'model'.",
            param="model",
            code="missing_required_parameter",
        )
    route = create.model_route(models, body.model)
    if not body.input and body.previous_response_id is None:
        raise InvalidRequestError(
            "One of 'input' or 'previous_response_id' must be provided.",
            code="missing_required_parameter",
        )
    text_format = body.text.format if body.text is not None else None
    if text_format is not None and not isinstance(text_format, TextFormatText):
        raise InvalidRequestError(
            "A compaction's summary is text: 'text.format' may only be of type 'text'.",
            param="text.format",
        )
    if body.image is not None and body.image.context_compression == "enabled":
        raise InvalidRequestError(
            "Image context compression is not available on this server: use 'auto' or 'disabled'.",
            param="image.context_compression",
            code="unsupported_value",
        )
    return route


async def _previous(session: AsyncSession, project: str, response_id: str) -> list[str]:
    """The chain `response_id` ends (newest first); 404 when it is unknown or another
    project's."""
    row = await repository.get(session, project, response_id)
    if row is None:
        raise NotFoundError(f"Response with id '{response_id}' not found.")
    if row.status not in TERMINAL:
        raise InvalidRequestError(
            f"Response with id '{response_id}' is still {row.status}; wait until it finishes "
            "before compacting it.",
            param="previous_response_id",
        )
    return await context.response_chain(session, project, response_id)


def _guidance(body: CompactRequest) -> list[dict[str, Any]]:
    """What the summary pass is told besides the context: the agent's tools (it calls none),
    and how long to write."""
    notes: list[str] = []
    named = [tool for tool in body.tools or [] if tool.name or tool.type]
    if named:
        lines = [
            f"- {tool.name or tool.type}" + (f": {tool.description}" if tool.description else "")
            for tool in named
        ]
        notes.append("The agent works with these tools:\n" + "\n".join(lines))
    verbosity = body.text.verbosity if body.text is not None else None
    if verbosity in _VERBOSITY:
        notes.append(_VERBOSITY[verbosity])
    return [{"role": "system", "content": "\n\n".join(notes)}] if notes else []


def _usage(summary: compaction.Summary) -> dict[str, Any]:
    prompt, completion = summary.prompt_tokens, summary.completion_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": summary.reasoning_tokens},
        "total_tokens": prompt + completion,
    }


def backend_failure(exc: BackendError) -> APIError:
    """A failed summary pass as the request's error."""
    if exc.code == "rate_limit_exceeded":
        return RateLimitError(exc.message, code="rate_limit_exceeded")
    if exc.code == "invalid_prompt":
        return InvalidRequestError(exc.message, param="input")
    return ServerError(exc.message, code="server_error")


async def compact(
    sessions: async_sessionmaker[AsyncSession],
    project: str,
    body: CompactRequest,
    *,
    models: ModelRouter,
    backend: ChatBackend,
    windows: ContextWindows,
    sealer: Sealer,
    blobs: BlobStore,
) -> CompactedResponseObject:
    route = _check(body, models)
    response_id = new_id(Prefix.RESPONSE)
    given: Sequence[InputItem] = body.input if isinstance(body.input, list) else []
    if isinstance(body.input, str):
        given = [MessageItem(role="user", content=body.input)]
    guidance = _guidance(body)
    # A transient run (never stored): what `context.build` reads.
    probe = Run(
        id=response_id,
        project=project,
        instructions=body.instructions,
        truncation_strategy={"type": "auto"},
        max_prompt_tokens=None,
        prompt_tokens=0,
    )
    window = await windows.of(route)
    budget, _ = context.prompt_budget(probe, window, route.max_output_tokens)
    budget -= estimate_message_tokens([*guidance, compaction.summary_message(compaction.PROMPT)])
    # Reads only, in no transaction: the model is called after the session is closed.
    async with sessions() as session:
        chain: list[str] = []
        if body.previous_response_id is not None:
            chain = await _previous(session, project, body.previous_response_id)
        rows = await convert.rows(session, project, given, input_of=response_id, sealer=sealer)
        earlier: list[Item] = await context.items_of(
            session, thread_id=None, responses=list(reversed(chain))
        )
        everything = [*earlier, *rows]
        try:
            built = await context.build(
                session, blobs, probe, everything, budget=budget, budget_reason="context_window"
            )
        except context.MissingToolOutput as exc:
            raise InvalidRequestError(str(exc), param="input") from exc
        except context.PromptTooLong as exc:
            raise InvalidRequestError(
                f"The context does not fit the context window of model '{body.model}' "
                f"({window} tokens) even without its middle turns.",
                param="input",
                code="context_length_exceeded",
            ) from exc
        kept = [items.item(row) for row in compaction.retained(everything)]
    messages = built.messages
    if guidance:
        at = 1 if body.instructions else 0  # after the instructions
        messages = [*messages[:at], *guidance, *messages[at:]]
    effort = body.reasoning.effort if body.reasoning is not None else None
    try:
        summary = await compaction.summarize(backend, route, messages, reasoning_effort=effort)
    except BackendError as exc:
        raise backend_failure(exc) from exc
    item = {
        "id": new_id(Prefix.COMPACTION),
        "type": "compaction",
        "encrypted_content": compaction.seal(sealer, project, summary.text),
    }
    return CompactedResponseObject(
        id=response_id,
        created_at=created_at_of(response_id),
        output=[*kept, item],
        usage=_usage(summary),
        safety_identifier=body.safety_identifier,
        service_tier="default" if body.service_tier in (None, "auto") else body.service_tier,
    )

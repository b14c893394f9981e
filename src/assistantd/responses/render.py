"""A response (a run row of the Responses API, and its items) as the wire's response object."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import Item, Run
from assistantd.items import render as items
from assistantd.responses.schemas import ResponseObject

# Run statuses as a response's (a cancel in flight is still in progress on this surface).
_STATUS = {"cancelling": "in_progress", "requires_action": "in_progress", "expired": "failed"}
_INCOMPLETE_REASON = {"max_completion_tokens": "max_output_tokens"}

_OUTPUT = select(Item).where(Item.run_id == bindparam("run_id")).order_by(Item.position)


async def output_of(session: AsyncSession, run_id: str) -> Sequence[Item]:
    """A response's output items, in order."""
    return (await session.scalars(_OUTPUT, {"run_id": run_id})).all()


def usage(run: Run) -> dict[str, Any] | None:
    if run.usage is None:
        return None
    prompt, completion = run.usage["prompt_tokens"], run.usage["completion_tokens"]
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": run.usage.get("reasoning_tokens", 0)},
        "total_tokens": prompt + completion,
    }


def status(run: Run) -> str:
    """A foreground response is never `queued` on OpenAI: it is in progress from its creation
    (only a background one waits in a queue)."""
    if run.status == "queued" and not (run.options or {}).get("background"):
        return "in_progress"
    return _STATUS.get(run.status, run.status)


def response(
    run: Run,
    output: Sequence[Item] = (),
    *,
    include: frozenset[str] | None = None,
    files: dict[str, str] | None = None,
) -> ResponseObject:
    """The response object; `include` (the optional fields shown) defaults to what its
    creation asked for."""
    options: dict[str, Any] = run.options or {}
    shown = status(run)
    incomplete = run.incomplete_details
    if incomplete is not None:
        reason = str(incomplete.get("reason"))
        incomplete = {"reason": _INCOMPLETE_REASON.get(reason, reason)}
    error = run.last_error if shown == "failed" else None
    conversation = options.get("conversation")
    tier = options.get("service_tier") or "auto"
    finished = shown in ("completed", "failed", "incomplete", "cancelled")
    return ResponseObject(
        id=run.id,
        created_at=run.created_at,
        status=shown,
        completed_at=run.completed_at if shown == "completed" else None,
        access_programs=options.get("access_programs"),
        background=bool(options.get("background")),
        conversation={"id": conversation} if conversation else None,
        error=error,
        frequency_penalty=options.get("frequency_penalty") or 0.0,
        image=options.get("image"),
        incomplete_details=incomplete if shown == "incomplete" else None,
        instructions=run.instructions,
        max_output_tokens=run.max_completion_tokens,
        max_tool_calls=options.get("max_tool_calls"),
        model=run.model,
        output=items.items(output, _included(run, include), files),
        parallel_tool_calls=run.parallel_tool_calls,
        presence_penalty=options.get("presence_penalty") or 0.0,
        # A WebSocket continuation of an unstored response names it (`create_response`'s
        # `continues`) though the chain in the database does not hold it.
        previous_response_id=options.get("continues") or run.previous_response_id,
        prompt_cache_diagnostics=options.get("prompt_cache_diagnostics"),
        prompt_cache_key=options.get("prompt_cache_key"),
        prompt_cache_options=options.get("prompt_cache_options"),
        prompt_cache_retention=options.get("prompt_cache_retention"),
        reasoning=options.get("reasoning") or {"effort": None, "summary": None},
        safety_identifier=options.get("safety_identifier"),
        service_tier="default" if finished and tier == "auto" else tier,
        store=options.get("store", True),
        temperature=run.temperature if run.temperature is not None else 1.0,
        text=options.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        tool_choice=options.get("tool_choice", "auto"),
        tools=options.get("tools") or [],
        top_logprobs=options.get("top_logprobs") or 0,
        top_p=run.top_p if run.top_p is not None else 1.0,
        truncation=(run.truncation_strategy or {}).get("type", "disabled"),
        usage=usage(run) if finished else None,
        user=options.get("user"),
        metadata=run.metadata_ or {},
    )


def _included(run: Run, include: frozenset[str] | None) -> frozenset[str]:
    return include if include is not None else frozenset(run.include or ())


async def full(
    session: AsyncSession,
    run: Run,
    include: frozenset[str] | None = None,
    *,
    output: Sequence[Item] | None = None,
) -> ResponseObject:
    """The response with its output (read from `session` unless given: its items in order)."""
    if output is None:
        # Output comes from executions; a response no worker has taken yet has none to read.
        output = await output_of(session, run.id) if run.attempts else []
    return response(run, output, include=include, files=await items.filenames(session, output))

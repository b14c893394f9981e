"""Rows to wire objects for runs and steps (the API and the event log share these)."""

from __future__ import annotations

import copy

from assistantd.db.models import Run, RunStep
from assistantd.runs.schemas import RunObject, RunStepObject


def run(row: Run) -> RunObject:
    return RunObject(
        id=row.id,
        created_at=row.created_at,
        thread_id=row.thread_id,
        assistant_id=row.assistant_id,
        status=row.status,
        required_action=row.required_action,
        last_error=row.last_error,
        expires_at=row.expires_at,
        started_at=row.started_at,
        cancelled_at=row.cancelled_at,
        failed_at=row.failed_at,
        completed_at=row.completed_at,
        incomplete_details=row.incomplete_details,
        model=row.model,
        instructions=row.instructions,
        tools=row.tools,
        metadata=row.metadata_,
        usage=row.usage,
        temperature=row.temperature,
        top_p=row.top_p,
        max_prompt_tokens=row.max_prompt_tokens,
        max_completion_tokens=row.max_completion_tokens,
        truncation_strategy=row.truncation_strategy,
        tool_choice=row.tool_choice,
        parallel_tool_calls=row.parallel_tool_calls,
        response_format=row.response_format,
    )


def step(row: RunStep, *, include_search_content: bool = False) -> RunStepObject:
    details = row.step_details
    if row.type == "tool_calls":
        details = _public(details)
        if not include_search_content:
            details = _without_search_content(details)
    return RunStepObject(
        id=row.id,
        created_at=row.created_at,
        assistant_id=row.assistant_id,
        thread_id=row.thread_id,
        run_id=row.run_id,
        type=row.type,
        status=row.status,
        step_details=details,
        last_error=row.last_error,
        expired_at=row.expired_at,
        cancelled_at=row.cancelled_at,
        failed_at=row.failed_at,
        completed_at=row.completed_at,
        metadata=row.metadata_,
        usage=row.usage,
    )


def _public(details: dict) -> dict:  # type: ignore[type-arg]
    """Drop the engine's private keys (`_`-prefixed: what the model saw) from tool calls."""
    calls = details.get("tool_calls", [])
    if not any(key.startswith("_") for call in calls for key in call):
        return details
    return {
        **details,
        "tool_calls": [{k: v for k, v in call.items() if not k.startswith("_")} for call in calls],
    }


def _without_search_content(details: dict) -> dict:  # type: ignore[type-arg]
    """File search result `content` is only shown when asked for with `include[]`."""
    if not any(call.get("type") == "file_search" for call in details.get("tool_calls", [])):
        return details
    trimmed = copy.deepcopy(details)
    for call in trimmed["tool_calls"]:
        for result in call.get("file_search", {}).get("results", []) or []:
            result.pop("content", None)
    return trimmed

"""Build the model's chat-completions context for one turn of a run, and fit it to the budget."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.backends.tokens import estimate_message_tokens, estimate_tools_tokens
from assistantd.blobs.store import BlobStore
from assistantd.db.models import File, Message, Run, RunStep

# When the model's own output limit is unknown, keep this share of its window for the answer.
_OUTPUT_SHARE = 4


class PromptTooLong(Exception):
    """Even the newest message does not fit; `reason` is the budget that was hit."""

    def __init__(self, reason: str, tokens: int, budget: int) -> None:
        super().__init__(f"{tokens} prompt tokens exceed the {reason} budget of {budget}")
        self.reason = reason
        self.tokens = tokens
        self.budget = budget


@dataclass
class Context:
    messages: list[dict[str, Any]]
    prompt_tokens: int


def prompt_budget(run: Run, context_window: int, max_output_tokens: int | None) -> tuple[int, str]:
    """Tokens the prompt may use this turn, and which limit sets it."""
    reserve = max_output_tokens or max(256, context_window // _OUTPUT_SHARE)
    window = max(context_window - reserve, 1)
    if run.max_prompt_tokens is not None:
        remaining = run.max_prompt_tokens - run.prompt_tokens
        if remaining < window:
            return remaining, "max_prompt_tokens"
    return window, "context_window"


async def _image_url(session: AsyncSession, blobs: BlobStore, project: str, file_id: str) -> str:
    row = await session.get(File, file_id)
    if row is None or row.project != project:
        return ""
    data = await blobs.read_all(row.blob_key)
    return f"data:{row.content_type};base64,{base64.b64encode(data).decode()}"


async def _user_content(
    session: AsyncSession, blobs: BlobStore, message: Message
) -> str | list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in message.content:
        kind = part["type"]
        if kind == "text":
            parts.append({"type": "text", "text": part["text"]["value"]})
        elif kind == "image_url":
            parts.append({"type": "image_url", "image_url": part["image_url"]})
        elif kind == "image_file":
            url = await _image_url(session, blobs, message.project, part["image_file"]["file_id"])
            if url:
                detail = part["image_file"].get("detail") or "auto"
                parts.append({"type": "image_url", "image_url": {"url": url, "detail": detail}})
    if message.attachments:
        names = await _file_names(session, [a["file_id"] for a in message.attachments])
        listed = ", ".join(
            f"{names.get(a['file_id'], a['file_id'])} ({a['file_id']}; tools: "
            f"{', '.join(t['type'] for t in a.get('tools', []))})"
            for a in message.attachments
        )
        parts.append({"type": "text", "text": f"[Attached files: {listed}]"})
    if all(p["type"] == "text" for p in parts):
        return "\n\n".join(p["text"] for p in parts)
    return parts


async def _file_names(session: AsyncSession, file_ids: list[str]) -> dict[str, str]:
    rows = await session.execute(select(File.id, File.filename).where(File.id.in_(file_ids)))
    return dict(rows.tuples().all())


def _assistant_text(message: Message) -> str:
    pieces = []
    for part in message.content:
        if part["type"] == "text":
            pieces.append(part["text"]["value"])
        elif part["type"] == "image_file":
            pieces.append(f"[image {part['image_file']['file_id']}]")
    return "\n\n".join(pieces)


def _run_history(steps: Sequence[RunStep], own: dict[str, Message]) -> list[dict[str, Any]]:
    """This run's finished steps so far: its messages, tool calls and tool outputs."""
    history: list[dict[str, Any]] = []
    for step in steps:
        if step.type == "message_creation":
            message = own.get(step.step_details["message_creation"]["message_id"])
            if message is not None and message.status != "in_progress":
                history.append({"role": "assistant", "content": _assistant_text(message)})
            continue
        calls = step.step_details.get("tool_calls", [])
        if not calls or any(_output(c) is None for c in calls):
            continue
        history.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["_function_name"], "arguments": c["_arguments"]},
                    }
                    if c["type"] != "function"
                    else {
                        "id": c["id"],
                        "type": "function",
                        "function": {
                            "name": c["function"]["name"],
                            "arguments": c["function"]["arguments"],
                        },
                    }
                    for c in calls
                ],
            }
        )
        for c in calls:
            history.append({"role": "tool", "tool_call_id": c["id"], "content": _output(c)})
    return history


def _output(call: dict[str, Any]) -> str | None:
    if call["type"] == "function":
        output = call["function"].get("output")
        return None if output is None else str(output)
    return call.get("_model_output")


_THREAD_MESSAGES = (
    select(Message).where(Message.thread_id == bindparam("thread_id")).order_by(Message.id)
)
_EARLIER_TOOL_STEPS = (
    select(RunStep)
    .where(
        RunStep.thread_id == bindparam("thread_id"),
        RunStep.run_id != bindparam("run_id"),
        RunStep.type == "tool_calls",
        RunStep.status == "completed",
    )
    .order_by(RunStep.id)
)


async def build(
    session: AsyncSession,
    blobs: BlobStore,
    run: Run,
    steps: Sequence[RunStep],
    *,
    budget: int,
    budget_reason: str,
    tools: Sequence[dict[str, Any]] = (),
) -> Context:
    """The turn's messages, oldest thread messages dropped until the prompt fits `budget`.

    The prompt is everything the backend counts: the messages and the tool definitions.
    """
    rows = (await session.scalars(_THREAD_MESSAGES, {"thread_id": run.thread_id})).all()
    own = {m.id: m for m in rows if m.run_id == run.id}
    thread_messages = [m for m in rows if m.run_id != run.id]
    if run.truncation_strategy.get("type") == "last_messages":
        keep = int(run.truncation_strategy.get("last_messages") or 1)
        thread_messages = thread_messages[-keep:]

    system = [{"role": "system", "content": run.instructions}] if run.instructions else []
    # Turns in thread order: each message, and each finished tool step of an earlier run (so
    # the model sees the code it ran before). A step's call and outputs stay together.
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for message in thread_messages:
        if message.role == "user":
            content = await _user_content(session, blobs, message)
            turns.append((_order(message.id), [{"role": "user", "content": content}]))
        else:
            text = _assistant_text(message)
            turns.append((_order(message.id), [{"role": "assistant", "content": text}]))
    oldest = turns[0][0] if turns else ""
    for step in await _earlier_tool_steps(session, run):
        if _order(step.id) > oldest:
            turns.append((_order(step.id), _run_history([step], {})))
    turns.sort(key=lambda turn: turn[0])
    history = _run_history(steps, own)

    fixed = estimate_message_tokens(system + history) + estimate_tools_tokens(tools)
    sizes = [estimate_message_tokens(messages) for _, messages in turns]
    total = fixed + sum(sizes)
    start = 0
    # truncation `auto`: drop the oldest turns until the prompt fits.
    while total > budget and start < len(turns) - 1:
        total -= sizes[start]
        start += 1
    if total > budget:
        raise PromptTooLong(budget_reason, total, budget)
    kept = [message for _, messages in turns[start:] for message in messages]
    return Context(messages=system + kept + history, prompt_tokens=total)


def _order(object_id: str) -> str:
    """Ids of every kind sort by creation time once their prefix is cut (see kit.ids)."""
    return object_id.split("_", 1)[-1]


async def _earlier_tool_steps(session: AsyncSession, run: Run) -> Sequence[RunStep]:
    params = {"thread_id": run.thread_id, "run_id": run.id}
    return (await session.scalars(_EARLIER_TOOL_STEPS, params)).all()

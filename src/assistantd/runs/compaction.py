"""Compaction: a context summarised by the routed model into one sealed `compaction` item.

Two callers: `POST /responses/compact` (`responses/compact.py`), and a response that compacts
its own context before answering (`context_management`, or a final `compaction_trigger` input
item; see `AutoCompaction`). Both summarise with one Chat Completions call to the model the
request names, and seal the summary with the server key, bound to the project.

What the model sees of a compacted context (`compacted`): the user messages that came before
the latest compaction item, then the summary in its place (a user message that says what it
is), then everything after it. That is exactly what `/responses/compact` returns (the user
messages, then the compaction item), so a client may pass that, or its whole history with the
compaction item in it, or continue a response chain that compacted: the model sees the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from assistantd.backends.chat import (
    BackendError,
    ChatBackend,
    ChatRequest,
    ReasoningDelta,
    TextDelta,
    Usage,
)
from assistantd.backends.routing import ModelRoute
from assistantd.backends.tokens import estimate_message_tokens, estimate_tokens
from assistantd.db.models import Item
from assistantd.errors import InvalidRequestError
from assistantd.kit.sealed import Sealer

KIND = "compaction"  # the item type, and the sealed content's kind

# The request that asks the model for the summary (after the context it summarises).
PROMPT = (
    "Context checkpoint. The conversation above will be replaced by a summary you write now, "
    "and the work continues from that summary alone (the user's messages are kept verbatim "
    "beside it). Write the summary for whoever picks the task up: the user's goal and "
    "constraints; what has been done so far, with the exact names, paths, commands, values "
    "and results that matter; decisions taken and why; what failed and should not be tried "
    "again; open questions; and the next steps. Be complete but concise. Write only the "
    "summary."
)
# How the summary reads in the model's context.
SUMMARY_HEADER = (
    "[Summary of the earlier conversation: it was compacted at a context checkpoint, and "
    "this summary, written then, replaces the turns it covers.]"
)


def seal(sealer: Sealer, project: str, summary: str) -> str:
    """The `encrypted_content` of a compaction item holding `summary` for `project`."""
    return sealer.seal(KIND, {"project": project, "summary": summary})


def open_summary(sealer: Sealer, project: str, token: str, *, param: str) -> str:
    """The summary `token` holds; a 400 `invalid_encrypted_content` when it was not sealed by
    this server, for a compaction, for this project, or was changed."""
    payload = sealer.open(KIND, token, param=param)
    if (
        not isinstance(payload, dict)
        or payload.get("project") != project
        or not isinstance(payload.get("summary"), str)
    ):
        raise InvalidRequestError(
            "The encrypted content could not be verified: it was not made for this project.",
            param=param,
            code="invalid_encrypted_content",
        )
    summary: str = payload["summary"]
    return summary


def item_data(token: str, summary: str) -> dict[str, Any]:
    """A compaction item's stored data: what the client sees, and the summary (private)."""
    return {"encrypted_content": token, "_summary": summary}


def summary_of(item: Item) -> str | None:
    if item.type != KIND:
        return None
    summary = (item.data or {}).get("_summary")
    return summary if isinstance(summary, str) else None


def summary_message(summary: str) -> dict[str, Any]:
    """A compaction item as the model reads it."""
    return {"role": "user", "content": f"{SUMMARY_HEADER}\n\n{summary}"}


def _latest(items: Sequence[Item]) -> int | None:
    for index in range(len(items) - 1, -1, -1):
        if summary_of(items[index]) is not None:
            return index
    return None


def _is_user_message(item: Item) -> bool:
    return item.type == "message" and item.role == "user"


def compacted(items: Sequence[Item]) -> list[Item]:
    """The items the model sees: before the latest compaction item, only the user messages
    (its summary stands for the rest); the compaction item and what follows it, all."""
    latest = _latest(items)
    if latest is None:
        return list(items)
    return [item for item in items[:latest] if _is_user_message(item)] + list(items[latest:])


def compactable(items: Sequence[Item]) -> bool:
    """Whether compacting would replace anything: an item other than a user message since the
    latest compaction (user messages are kept as they are)."""
    latest = _latest(items)
    since = items if latest is None else items[latest + 1 :]
    return any(not _is_user_message(item) for item in since)


def retained(items: Sequence[Item]) -> list[Item]:
    """The items a compaction keeps beside its summary: the context's user messages."""
    return [item for item in compacted(items) if _is_user_message(item)]


@dataclass
class Summary:
    text: str
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int = 0  # of completion_tokens (a reasoning model's)


async def summarize(
    backend: ChatBackend,
    route: ModelRoute,
    messages: list[dict[str, Any]],
    *,
    reasoning_effort: str | None = None,
    on_text: Callable[[], None] | None = None,
) -> Summary:
    """The routed model's summary of the chat `messages` (one call; no tools offered).
    `on_text` is called as the model samples (the summary, or its reasoning before it).
    Raises `BackendError`."""
    request = ChatRequest(
        messages=[*messages, {"role": "user", "content": PROMPT}],
        max_tokens=route.max_output_tokens,
        reasoning_effort=reasoning_effort,
    )
    pieces: list[str] = []
    usage: Usage | None = None
    async with aclosing(backend.stream(route, request)) as events:
        async for event in events:
            if isinstance(event, TextDelta) and event.text:
                pieces.append(event.text)
                if on_text is not None:
                    on_text()
            elif isinstance(event, ReasoningDelta) and on_text is not None:
                on_text()
            elif isinstance(event, Usage):
                usage = event
    text = "".join(pieces).strip()
    if not text:
        raise BackendError(
            "server_error",
            f"The model '{route.name}' returned an empty summary when asked to compact the "
            "context.",
        )
    if usage is not None:
        reasoned = usage.reasoning_tokens or 0
        return Summary(text, usage.prompt_tokens, usage.completion_tokens, reasoned)
    return Summary(text, estimate_message_tokens(request.messages), estimate_tokens(text))

"""Build the model's chat-completions context for one turn of a run or response, and fit it to
the budget.

The context is items (see `db.models.Item`), for both API surfaces: the thread's or
conversation's items, or a response chain's (`previous_response_id`), then the items this run
was given and has produced so far. Messages become chat messages; a group of tool calls becomes
one assistant message with `tool_calls`, followed by one `tool` message per call. Reasoning goes
back only to models whose route says so (`reasoning_to_backend`), as the `reasoning_content` of
the assistant message that followed it.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.backends.tokens import estimate_message_tokens, estimate_tools_tokens
from assistantd.blobs.store import BlobStore
from assistantd.db.models import File, Item, Run
from assistantd.items import client_calls, reasoning
from assistantd.items.client_calls import OUTPUT_TYPES
from assistantd.items.kinds import CALL_TYPES, CLIENT_CALL_TYPES, SERVER_CALL_TYPES
from assistantd.mcp import items as mcp_items
from assistantd.runs import compaction, tail
from assistantd.runs.tail import UNBOUNDED as UNBOUNDED
from assistantd.runs.tail import Reading as Reading
from assistantd.vector_stores import parsing

# When the model's own output limit is unknown, keep this share of its window for the answer.
_OUTPUT_SHARE = 4
# Characters of an `input_file`'s text the model is given.
FILE_TEXT_LIMIT = 200_000
_ITEMS_PER_TURN = 256  # items rendered between two looks at the event loop


class PromptTooLong(Exception):
    """The context does not fit even after truncation; `reason` is the budget that was hit."""

    def __init__(self, reason: str, tokens: int, budget: int) -> None:
        super().__init__(f"{tokens} prompt tokens exceed the {reason} budget of {budget}")
        self.reason = reason
        self.tokens = tokens
        self.budget = budget


class MissingToolOutput(Exception):
    """A completed function call in the context has no output (OpenAI answers 400)."""

    def __init__(self, call_id: str) -> None:
        super().__init__(f"No tool output found for function call {call_id}.")
        self.call_id = call_id


@dataclass
class Context:
    messages: list[dict[str, Any]]
    prompt_tokens: int
    # This run has called a tool already (a forced tool choice is then satisfied).
    tool_called: bool = False
    # The prompt's tokens before truncation (what passes a compaction threshold).
    whole_tokens: int = 0


def prompt_budget(
    run: Run, context_window: int | None, max_output_tokens: int | None
) -> tuple[int, str]:
    """Tokens the prompt may use this turn, and which limit sets it. An unknown window sets
    none: the backend tells when a prompt is too long."""
    if context_window is None:
        window = UNBOUNDED
    else:
        reserve = max_output_tokens or max(256, context_window // _OUTPUT_SHARE)
        window = max(context_window - reserve, 1)
    if run.max_prompt_tokens is not None:
        remaining = run.max_prompt_tokens - run.prompt_tokens
        if remaining < window:
            return remaining, "max_prompt_tokens"
    return window, "context_window"


# --- which items ---------------------------------------------------------------------------

_CHAIN = text(
    "WITH RECURSIVE chain(id, previous_response_id, depth) AS ("
    " SELECT id, previous_response_id, 0 FROM runs WHERE id = :start AND project = :project"
    " UNION ALL"
    " SELECT r.id, r.previous_response_id, c.depth + 1 FROM runs r"
    " JOIN chain c ON r.id = c.previous_response_id WHERE r.project = :project AND c.depth < 10000"
    ") SELECT id FROM chain"
)


async def response_chain(session: AsyncSession, project: str, start: str | None) -> list[str]:
    """`start` and the responses it continues (`previous_response_id`), newest first."""
    if start is None:
        return []
    rows = await session.execute(_CHAIN, {"start": start, "project": project})
    return [row[0] for row in rows]


async def items_of(
    session: AsyncSession,
    *,
    thread_id: str | None,
    responses: Sequence[str],
    reading: Reading | None = None,
) -> list[Item]:
    """The items of a thread (conversation) and of the given responses (their input and
    output), in order. With `reading`, only the thread's newest items that fit its budget
    (those of the responses are all read): a long thread costs what fits the window."""
    condition: Any = None
    if thread_id is not None:
        start = None
        if reading is not None:
            try:
                start = await tail.tail_start(session, thread_id, reading)
            except tail.ThreadTooLong as exc:
                raise PromptTooLong(exc.reason, exc.tokens, exc.budget) from exc
        condition = Item.thread_id == thread_id
        if start is not None:
            kept: Any = Item.position >= start
            first = await tail.first_message(session, thread_id)
            if first is not None:  # the oldest message, which `auto` truncation keeps
                kept = or_(kept, Item.position == first)
            condition = and_(condition, kept)
    ids = list(responses)
    if ids:
        own = or_(Item.run_id.in_(ids), Item.input_of.in_(ids))
        condition = own if condition is None else or_(condition, own)
    if condition is None:
        return []
    rows = await session.scalars(select(Item).where(condition).order_by(Item.position))
    return list(rows.all())


_OWN_ITEMS = select(Item).where(
    or_(
        Item.run_id.in_(bindparam("ids", expanding=True)),
        Item.input_of.in_(bindparam("ids", expanding=True)),
    )
)


async def load_many(session: AsyncSession, runs: Sequence[Run]) -> dict[str, list[Item]]:
    """`load` for several runs at once, by run id, in one statement: for the runs whose items
    are their own (responses that continue nothing); the others are left out."""
    own = [run.id for run in runs if _self_contained(run)]
    if not own:
        return {}
    found: dict[str, list[Item]] = {run_id: [] for run_id in own}
    for item in (await session.scalars(_OWN_ITEMS, {"ids": own})).all():
        owner = item.run_id if item.run_id in found else item.input_of
        if owner in found:
            found[owner].append(item)
    for items in found.values():
        items.sort(key=lambda item: item.position)
    return found


def _self_contained(run: Run) -> bool:
    return (
        not run.id.startswith("run_") and run.thread_id is None and run.previous_response_id is None
    )


async def load(session: AsyncSession, run: Run, reading: Reading | None = None) -> list[Item]:
    """Every item the model sees for `run`, in order (of its thread, with `reading`, the
    newest that fit; raises `PromptTooLong` for a strict one)."""
    if run.id.startswith("run_"):  # an Assistants run: its own items are in its thread
        own = [run.id] if reading is not None else []  # never cut from the thread's tail
        return await items_of(session, thread_id=run.thread_id, responses=own, reading=reading)
    chain = await response_chain(session, run.project, run.previous_response_id)
    return await items_of(
        session, thread_id=run.thread_id, responses=[*reversed(chain), run.id], reading=reading
    )


# --- items to chat messages ----------------------------------------------------------------


async def _image_url(session: AsyncSession, blobs: BlobStore, project: str, file_id: str) -> str:
    row = await session.get(File, file_id)
    if row is None or row.project != project:
        return ""
    data = await blobs.read_all(row.blob_key)
    return f"data:{row.content_type};base64,{base64.b64encode(data).decode()}"


def _text_of(data: bytes, filename: str, content_type: str | None) -> str:
    pieces: list[str] = []
    size = 0
    for segment in parsing.segments(io.BytesIO(data), filename, content_type):
        pieces.append(segment)
        size += len(segment)
        if size >= FILE_TEXT_LIMIT:
            break
    return "".join(pieces)[:FILE_TEXT_LIMIT]


async def _file_text(
    session: AsyncSession, blobs: BlobStore, project: str, part: dict[str, Any]
) -> str:
    """An `input_file` part as text the model can read: the file's extracted text."""
    spec = part["input_file"]
    filename = spec.get("filename") or "file"
    content_type: str | None = None
    if spec.get("file_id"):
        row = await session.get(File, spec["file_id"])
        if row is None or row.project != project:
            return f"[File {spec['file_id']} is no longer available.]"
        data = await blobs.read_all(row.blob_key)
        filename, content_type = row.filename, row.content_type
    else:
        encoded = str(spec.get("file_data") or "")
        header, _, payload = (
            encoded.partition(",") if encoded.startswith("data:") else ("", "", encoded)
        )
        if header:
            content_type = header[5:].split(";", 1)[0] or None
        data = base64.b64decode(payload)
    try:
        extracted = await asyncio.to_thread(_text_of, data, filename, content_type)
    except parsing.ParseError as exc:
        return f"[File {filename} could not be read: {exc.message}]"
    return f"[File: {filename}]\n{extracted}"


async def _message_content(
    session: AsyncSession, blobs: BlobStore, item: Item
) -> str | list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in item.content or []:
        kind = part["type"]
        if kind == "text":
            parts.append({"type": "text", "text": part["text"]["value"]})
        elif kind == "image_url":
            parts.append({"type": "image_url", "image_url": part["image_url"]})
        elif kind == "image_file":
            url = await _image_url(session, blobs, item.project, part["image_file"]["file_id"])
            if url:
                detail = part["image_file"].get("detail") or "auto"
                parts.append({"type": "image_url", "image_url": {"url": url, "detail": detail}})
        elif kind == "input_file":
            file_text = await _file_text(session, blobs, item.project, part)
            parts.append({"type": "text", "text": file_text})
    if item.attachments:
        names = await _file_names(session, [a["file_id"] for a in item.attachments])
        listed = ", ".join(
            f"{names.get(a['file_id'], a['file_id'])} ({a['file_id']}; tools: "
            f"{', '.join(t['type'] for t in a.get('tools', []))})"
            for a in item.attachments
        )
        parts.append({"type": "text", "text": f"[Attached files: {listed}]"})
    if all(p["type"] == "text" for p in parts):
        return "\n\n".join(p["text"] for p in parts)
    return parts


async def _file_names(session: AsyncSession, file_ids: list[str]) -> dict[str, str]:
    rows = await session.execute(select(File.id, File.filename).where(File.id.in_(file_ids)))
    return dict(rows.all())


def _assistant_text(item: Item) -> str:
    pieces = []
    for part in item.content or []:
        if part["type"] == "text":
            pieces.append(part["text"]["value"])
        elif part["type"] == "image_file":
            pieces.append(f"[image {part['image_file']['file_id']}]")
        elif part["type"] == "refusal":
            pieces.append(part["refusal"])
    return "\n\n".join(pieces)


_CHAT_ROLE = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


def _call(item: Item, function_names: dict[str, str]) -> dict[str, Any]:
    """The chat-completions tool call an item records."""
    data = item.data or {}
    if item.type in CLIENT_CALL_TYPES:
        name, arguments = client_calls.chat_call(item)
    elif item.type in ("mcp_call", "mcp_approval_request"):
        name, arguments = mcp_items.call_name(item), data.get("arguments", "")
    else:
        name = data.get("_function_name") or function_names.get(item.type, item.type)
        arguments = data.get("_arguments") or _replayed_arguments(item)
    return {
        "id": item.call_id or item.id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _replayed_arguments(item: Item) -> str:
    """A server tool call a client replayed (without what the model saw), as arguments."""
    data = item.data or {}
    if item.type == "code_interpreter_call":
        return json.dumps({"code": data.get("code") or ""})
    if item.type == "web_search_call":
        return json.dumps(_web_search_arguments(data.get("action") or {}))
    return json.dumps({"queries": data.get("queries") or []})


def _web_search_arguments(action: dict[str, Any]) -> dict[str, Any]:
    kind = action.get("type")
    if kind in ("open_page", "find_in_page", "find"):
        given = {k: action[k] for k in ("url", "pattern") if action.get(k)}
        return {"action": "find_in_page" if kind == "find" else kind, **given}
    queries = action.get("queries") or ([action["query"]] if action.get("query") else [])
    return {"action": "search", "queries": queries}


def _server_output(item: Item) -> str:
    data = item.data or {}
    if data.get("_model_output") is not None:
        return str(data["_model_output"])
    if item.type == "web_search_call":
        # A client's history carries no results: at most the sources (with their include).
        sources = (data.get("action") or {}).get("sources") or []
        listed = "\n".join(str(s.get("url", "")) for s in sources if isinstance(s, dict))
        return f"Sources:\n{listed}" if listed else "(what this call found was not kept)"
    if item.type == "code_interpreter_call":
        logs = [o.get("logs", "") for o in data.get("outputs") or [] if o.get("type") == "logs"]
        return "\n".join(logs) or "(no output)"
    results = data.get("results") or []
    return "\n\n".join(str(r.get("text", "")) for r in results) or "(no results)"


async def _turns(
    session: AsyncSession,
    blobs: BlobStore,
    items: Sequence[Item],
    function_names: dict[str, str],
    outputs: dict[str, Item],
    reasoning_to_backend: bool = False,
) -> list[list[dict[str, Any]]]:
    """The items as turns of chat messages: a message, or a group of tool calls with their
    outputs (`outputs`, by call id; kept together, as the backend requires)."""
    turns: list[list[dict[str, Any]]] = []
    group: list[Item] = []
    declined = mcp_items.declined_requests(list(items))
    thoughts: list[str] = []  # reasoning not yet attached to the assistant message after it

    def assistant(message: dict[str, Any]) -> dict[str, Any]:
        if thoughts:
            message["reasoning_content"] = "\n\n".join(thoughts)
            thoughts.clear()
        return message

    def close_group() -> None:
        if not group:
            return
        calls = [_call(item, function_names) for item in group]
        turn: list[dict[str, Any]] = [
            assistant({"role": "assistant", "content": None, "tool_calls": calls})
        ]
        for item, call in zip(group, calls, strict=True):
            if item.type in CLIENT_CALL_TYPES:
                given = outputs.get(item.call_id or "")
                if given is None:
                    raise MissingToolOutput(call["id"])
                content = client_calls.chat_output(given)
            elif item.type in mcp_items.TYPES:
                content = mcp_items.model_output(item, declined)
            else:
                content = _server_output(item)
            turn.append({"role": "tool", "tool_call_id": call["id"], "content": content})
        turns.append(turn)
        group.clear()

    for index, item in enumerate(items):
        if index % _ITEMS_PER_TURN == _ITEMS_PER_TURN - 1:
            await asyncio.sleep(0)  # a long context: other requests get their turn
        if item.type == "mcp_approval_request":
            if mcp_items.declined_request(item, declined):  # the model reads it was declined
                group.append(item)
            continue  # pending, or approved (its call is its own item)
        if item.type in CALL_TYPES:
            # A call still streaming (an interrupted attempt) or abandoned (its run expired
            # waiting for outputs) is not part of the conversation; a failed one is, with why.
            # A tool search call without a call id (server-run, replayed) has no output to pair.
            failed = item.status == "failed" and item.type in SERVER_CALL_TYPES
            unpaired = item.type == "tool_search_call" and item.call_id is None
            if (item.status == "completed" or failed) and not unpaired:
                group.append(item)
            continue
        if item.type in OUTPUT_TYPES:
            close_group()  # answered: the calls before it are one group
            continue  # an output travels with its call
        summary = compaction.summary_of(item)
        if summary is not None:
            close_group()
            thoughts.clear()  # a summary stands for what came before, reasoning included
            turns.append([compaction.summary_message(summary)])
            continue
        if item.type == "reasoning":
            if reasoning_to_backend and item.status != "in_progress":
                close_group()  # a new model turn starts
                thought = reasoning.text_of(item.data or {})
                if thought:
                    thoughts.append(thought)
            continue
        if item.type != "message" or item.status == "in_progress":
            continue
        close_group()
        role = _CHAT_ROLE.get(item.role or "user", "user")
        if role == "assistant":
            turns.append([assistant({"role": "assistant", "content": _assistant_text(item)})])
        else:
            thoughts.clear()  # reasoning that led to no answer
            content = await _message_content(session, blobs, item)
            turns.append([{"role": role, "content": content}])
    close_group()
    return turns


async def _sizes(turns: list[list[dict[str, Any]]]) -> list[int]:
    """The estimated tokens of each turn, giving the event loop a turn now and then."""
    sizes: list[int] = []
    for start in range(0, len(turns), _ITEMS_PER_TURN):
        sizes += [estimate_message_tokens(turn) for turn in turns[start : start + _ITEMS_PER_TURN]]
        await asyncio.sleep(0)
    return sizes


async def build(
    session: AsyncSession,
    blobs: BlobStore,
    run: Run,
    items: Sequence[Item],
    *,
    budget: int,
    budget_reason: str,
    tools: Sequence[dict[str, Any]] = (),
    function_names: dict[str, str] | None = None,
    reasoning_to_backend: bool = False,
) -> Context:
    """The turn's messages: instructions, then `items` (see `load`) as compacted (see
    `compaction.compacted`), truncated to `budget`.

    What this run has produced is never truncated. The rest is dropped from the middle (the
    oldest turn stays while the newest ones still fit), as OpenAI's `auto` truncation does;
    `truncation: disabled` (a response's) and `last_messages` (a run's) decide what may go.
    The prompt is everything the backend counts: the messages and the tool definitions.
    """
    names = function_names or {}
    tool_called = any(item.type in CALL_TYPES and item.run_id == run.id for item in items)
    items = compaction.compacted(items)
    own = [item for item in items if item.run_id == run.id]
    earlier = [item for item in items if item.run_id != run.id]
    strategy = run.truncation_strategy or {}
    if strategy.get("type") == "last_messages":
        keep = int(strategy.get("last_messages") or 1)
        messages = [i for i, item in enumerate(earlier) if item.type == "message"]
        if len(messages) > keep:
            earlier = earlier[messages[-keep] :]

    outputs = {
        item.call_id: item
        for item in items
        if item.type in OUTPUT_TYPES and item.call_id is not None
    }
    system = [{"role": "system", "content": run.instructions}] if run.instructions else []
    replay = reasoning_to_backend
    turns = await _turns(session, blobs, earlier, names, outputs, replay)
    history = [
        message
        for turn in await _turns(session, blobs, own, names, outputs, replay)
        for message in turn
    ]

    fixed = estimate_message_tokens(system + history) + estimate_tools_tokens(tools)
    sizes = await _sizes(turns)
    total = whole = fixed + sum(sizes)
    kept: list[int] = list(range(len(turns)))
    if strategy.get("type") != "disabled":
        # Drop from the middle: the second oldest first, then the next, while the newest turn
        # and the oldest stay; the oldest goes last.
        middle = 1
        while total > budget and len(kept) > 1:
            index = kept.pop(middle if len(kept) > 2 else 0)
            total -= sizes[index]
    if total > budget:
        raise PromptTooLong(budget_reason, total, budget)
    chosen = [message for index in kept for message in turns[index]]
    return Context(
        messages=system + chosen + history,
        prompt_tokens=total,
        tool_called=tool_called,
        whole_tokens=whole,
    )

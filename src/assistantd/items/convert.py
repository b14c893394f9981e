"""Items clients send (a response's `input`, conversation items) into item rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import Item
from assistantd.errors import InvalidRequestError, NotFoundError
from assistantd.files import repository as files
from assistantd.items import content, reasoning, repository
from assistantd.items.client_schemas import CLIENT_ITEMS, LocalShellCallOutputItem
from assistantd.items.kinds import PREFIX, new_item
from assistantd.items.schemas import (
    CodeInterpreterCallItem,
    CompactionItem,
    CompactionTriggerItem,
    CustomToolCallOutputItem,
    FileSearchCallItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputFile,
    InputImage,
    InputItem,
    ItemReference,
    MessageItem,
    ReasoningItem,
    WebSearchCallItem,
)
from assistantd.kit.ids import Prefix, check_prefix, new_id
from assistantd.kit.sealed import Sealer
from assistantd.mcp import items as mcp_items
from assistantd.mcp.items import InputMcpItem
from assistantd.messages import service as messages
from assistantd.runs import compaction

# Statuses an item keeps when it comes in (server tool calls also report finer ones).
_ITEM_STATUSES = frozenset({"in_progress", "completed", "incomplete"})


def _message(
    project: str, given: MessageItem, *, thread_id: str | None, input_of: str | None
) -> Item:
    if isinstance(given.content, str):
        parts = [content.stored_text(given.content)]
    else:
        parts = [content.stored_part(part) for part in given.content]
    return messages.new_message(
        project,
        thread_id,
        role=given.role,
        content_parts=parts,
        input_of=input_of,
        status=given.status or "completed",
    )


def _row(
    project: str,
    given: InputItem,
    *,
    thread_id: str | None,
    input_of: str | None,
    opened: str | None = None,
) -> Item | None:
    """The row of one item; None for a reference (resolved by the caller). `opened` is what
    its sealed content holds (a reasoning item's text, a compaction item's summary)."""
    if isinstance(given, MessageItem):
        return _message(project, given, thread_id=thread_id, input_of=input_of)
    if isinstance(given, ItemReference | CompactionTriggerItem):
        return None
    if isinstance(given, CompactionItem):
        assert opened is not None
        sealed = compaction.item_data(given.encrypted_content, opened)
        return new_item(project, "compaction", thread_id=thread_id, input_of=input_of, data=sealed)
    if isinstance(given, InputMcpItem):
        kind, fields, state = mcp_items.row_fields(given)
        return new_item(
            project,
            kind,
            thread_id=thread_id,
            status=state,
            input_of=input_of,
            call_id=given.id if kind in ("mcp_call", "mcp_approval_request") else None,
            data=fields,
        )
    if isinstance(given, FunctionCallItem):
        kind, call_id = "function_call", given.call_id
        data: dict[str, Any] = {"name": given.name, "arguments": given.arguments}
        if given.namespace is not None:
            data["namespace"] = given.namespace
    elif isinstance(given, FunctionCallOutputItem):
        kind, call_id = "function_call_output", given.call_id
        output = given.output
        data = {
            "output": output
            if isinstance(output, str)
            else [p.model_dump(exclude_none=True) for p in output]
        }
    elif isinstance(given, ReasoningItem):
        kind, call_id = "reasoning", None
        data = given.model_dump(include={"summary", "content", "encrypted_content"})
        if opened is not None:
            data["_text"] = opened  # what the sealed content holds, for the model
    elif isinstance(given, CodeInterpreterCallItem):
        kind, call_id = "code_interpreter_call", given.id
        data = given.model_dump(include={"code", "container_id", "outputs"})
    elif isinstance(given, WebSearchCallItem):
        kind, call_id = "web_search_call", given.id
        data = {"action": given.action}
    elif isinstance(given, FileSearchCallItem):
        kind, call_id = "file_search_call", given.id
        data = given.model_dump(include={"queries", "results"})
    else:
        kind, call_id, data = _client_fields(given)
    status = getattr(given, "status", None)
    return new_item(
        project,
        kind,
        thread_id=thread_id,
        status=str(status)
        if status in _ITEM_STATUSES or kind == "apply_patch_call_output"
        else "completed",
        input_of=input_of,
        call_id=call_id,
        data=data,
    )


def _client_fields(given: InputItem) -> tuple[str, str | None, dict[str, Any]]:
    """The type, call id and data of a client tool's call or output item."""
    assert isinstance(given, (*CLIENT_ITEMS, CustomToolCallOutputItem))
    kind = given.type
    if isinstance(given, LocalShellCallOutputItem):
        return kind, given.call_id or given.id, {"output": given.output}
    if isinstance(given, CustomToolCallOutputItem):
        output = given.output
        if isinstance(output, str):
            return kind, given.call_id, {"output": output}
        return kind, given.call_id, {"output": [p.model_dump(exclude_none=True) for p in output]}
    fields = {
        "custom_tool_call": {"name", "input", "namespace"},
        "local_shell_call": {"action"},
        "shell_call": {"action", "environment"},
        "shell_call_output": {"output", "max_output_length"},
        "apply_patch_call": {"operation"},
        "apply_patch_call_output": {"output"},
        "tool_search_call": {"arguments", "execution"},
        "tool_search_output": {"tools", "execution"},
        "additional_tools": {"tools", "role"},
    }[kind]
    data = given.model_dump(include=fields, exclude_none=kind != "shell_call")
    if kind in ("tool_search_call", "tool_search_output"):
        data["execution"] = data.get("execution") or "client"
    if kind == "local_shell_call":
        data["action"] = given.model_dump(include={"action"})["action"]
    return kind, getattr(given, "call_id", None), data


def _files_named(given: Sequence[InputItem], param: str) -> list[tuple[str, str]]:
    """Every file id the items name, with the parameter that names it."""
    named: list[tuple[str, str]] = []
    for index, item in enumerate(given):
        parts: Sequence[Any] = ()
        if isinstance(item, MessageItem) and not isinstance(item.content, str):
            parts = item.content
        elif isinstance(item, FunctionCallOutputItem | CustomToolCallOutputItem) and not isinstance(
            item.output, str
        ):
            parts = item.output
        where = "content" if isinstance(item, MessageItem) else "output"
        for at, part in enumerate(parts):
            if isinstance(part, InputImage | InputFile) and part.file_id is not None:
                named.append((f"{param}[{index}].{where}[{at}].file_id", part.file_id))
    return named


async def _check_files(session: AsyncSession, project: str, named: list[tuple[str, str]]) -> None:
    for name, file_id in named:
        check_prefix(file_id, Prefix.FILE, name)
    missing = set(await files.missing_ids(session, project, [file_id for _, file_id in named]))
    for name, file_id in named:
        if file_id in missing:
            raise InvalidRequestError(
                f"No file found with id '{file_id}'.", param=name, code="invalid_file_id"
            )


async def _taken(session: AsyncSession, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    return set(await session.scalars(select(Item.id).where(Item.id.in_(ids))))


async def rows(
    session: AsyncSession,
    project: str,
    given: Sequence[InputItem],
    *,
    thread_id: str | None = None,
    input_of: str | None = None,
    param: str = "input",
    sealer: Sealer,
    message_ids: bool = True,
) -> list[Item]:
    """New item rows for `given`, in order (not yet added to the session).

    An item keeps the id it came with when that id is free (a client's own); an item that was
    ours already (an output replayed as input) gets a new one. Without `message_ids` (the input
    of an unstored response, which nobody can list or reference) messages always get new ones:
    nothing looks a message up by its id there, and the look-up is on the path of every turn of
    a client that resends its history with ids. A reference becomes a copy of
    the item it names. A reasoning item's `encrypted_content` must be one `sealer` made (else a
    400 `invalid_encrypted_content`); its text is kept for the model. So must a compaction
    item's, for this project; its summary is kept for the model.
    """
    opened: dict[int, str] = {}
    for index, item in enumerate(given):
        where = f"{param}[{index}].encrypted_content"
        if isinstance(item, ReasoningItem) and item.encrypted_content is not None:
            opened[index] = reasoning.opened(sealer, item.encrypted_content, param=where)
        elif isinstance(item, CompactionItem):
            opened[index] = compaction.open_summary(
                sealer, project, item.encrypted_content, param=where
            )
        elif isinstance(item, CompactionTriggerItem):
            raise InvalidRequestError(
                "A 'compaction_trigger' item may only be the last input item of a response.",
                param=f"{param}[{index}]",
            )
    named = _files_named(given, param)
    if named:
        await _check_files(session, project, named)
    for index, item in enumerate(given):
        if item.id is not None and not isinstance(item, ItemReference) and _kind_of(item) in PREFIX:
            if isinstance(item, MessageItem | FunctionCallItem | ReasoningItem | CompactionItem):
                check_prefix(item.id, PREFIX[_kind_of(item)], f"{param}[{index}].id")

    def keeps(item: InputItem) -> bool:
        return _own_id(item) and (message_ids or not isinstance(item, MessageItem))

    wanted = [item.id for item in given if item.id is not None and keeps(item)]
    taken = await _taken(session, wanted)
    references = await _references(session, project, given)
    out: list[Item] = []
    for index, item in enumerate(given):
        if isinstance(item, ItemReference):
            out.append(copy_of(references[item.id], thread_id=thread_id, input_of=input_of))
            continue
        row = _row(project, item, thread_id=thread_id, input_of=input_of, opened=opened.get(index))
        assert row is not None
        if item.id is not None and keeps(item) and item.id not in taken:
            row.id = item.id
            taken.add(item.id)
        out.append(row)
    return out


def _own_id(item: InputItem) -> bool:
    """Whether the item's `id` is its own (a local_shell_call_output's names its call)."""
    return item.id is not None and not isinstance(item, ItemReference | LocalShellCallOutputItem)


def _kind_of(item: InputItem) -> str:
    return item.type or ("message" if isinstance(item, MessageItem) else "item_reference")


async def _references(
    session: AsyncSession, project: str, given: Sequence[InputItem]
) -> dict[str, Item]:
    ids = [item.id for item in given if isinstance(item, ItemReference)]
    if not ids:
        return {}
    found = await repository.referable(session, project, ids)
    for item_id in ids:
        if item_id not in found:
            raise NotFoundError(f"Item with id '{item_id}' not found.")
    return found


def copy_of(source: Item, *, thread_id: str | None = None, input_of: str | None = None) -> Item:
    """A new item (new id) with `source`'s content."""
    prefix = PREFIX.get(source.type, Prefix.MESSAGE)
    copy = new_item(
        source.project,
        source.type,
        thread_id=thread_id,
        status=source.status if source.status != "in_progress" else "completed",
        input_of=input_of,
        call_id=source.call_id,
        data=dict(source.data or {}),
        item_id=new_id(prefix),
    )
    copy.role = source.role
    copy.content = source.content
    copy.attachments = source.attachments if source.type == "message" else None
    copy.metadata_ = source.metadata_ if source.type == "message" else None
    return copy

"""Item use cases, and the entry points the run engine uses to write messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, cast

from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import Item, Thread
from assistantd.errors import InvalidRequestError, not_found
from assistantd.files import repository as files
from assistantd.kit.ids import Prefix, check_prefix, created_at_of, new_id, position_of
from assistantd.kit.pagination import Page
from assistantd.messages import repository
from assistantd.messages.schemas import (
    ContentPartParam,
    MessageCreate,
    MessageModify,
    MessageObject,
)
from assistantd.runs import guard as runs_guard
from assistantd.vector_stores import service as vector_stores

MessageStatus = Literal["in_progress", "incomplete", "completed"]
Role = Literal["user", "assistant"]


def render(row: Item) -> MessageObject:
    """A message item as the Assistants API shows it. Content the Assistants API has no part for
    (a Responses `input_file`) is listed among the attachments instead."""
    content = row.content or []
    attachments = row.attachments
    files = [part["input_file"] for part in content if part["type"] == "input_file"]
    if files:
        content = [part for part in content if part["type"] != "input_file"]
        attachments = [
            *(attachments or []),
            *({"file_id": f["file_id"], "tools": []} for f in files if f.get("file_id")),
        ]
    if row.run_id is not None and row.run_id.startswith(Prefix.RESPONSE):
        content = [_without_container_citations(part) for part in content]
    return MessageObject(
        id=row.id,
        created_at=row.created_at,
        thread_id=cast(str, row.thread_id),
        status=cast(MessageStatus, row.status),
        incomplete_details=row.incomplete_details,
        completed_at=row.completed_at,
        incomplete_at=row.incomplete_at,
        role=cast(Role, row.role),
        content=content,
        assistant_id=row.assistant_id,
        run_id=row.run_id,
        attachments=attachments,
        metadata=row.metadata_,
    )


def _without_container_citations(part: dict[str, Any]) -> dict[str, Any]:
    """A response's text part without the citations only the Responses API has (a figure's
    container file: the Assistants API has no annotation type for it)."""
    if part["type"] != "text":
        return part
    annotations = part["text"].get("annotations") or []
    kept = [a for a in annotations if a["type"] != "container_file_citation"]
    if len(kept) == len(annotations):
        return part
    return {"type": "text", "text": {**part["text"], "annotations": kept}}


async def require(session: AsyncSession, thread: Thread, message_id: str) -> Item:
    """The message `message_id` of `thread`, or 404 (also for a message of another thread)."""
    row = await repository.get(session, thread.project, message_id)
    if row is None or row.thread_id != thread.id:
        raise not_found("message", message_id)
    return row


async def ensure_no_active_run(session: AsyncSession, thread: Thread) -> None:
    """Refuse a new message while a run is active on `thread` (OpenAI answers 400)."""
    await runs_guard.ensure_no_active_run(session, thread.id, for_run=False)


def new_message(
    project: str,
    thread_id: str | None,
    *,
    role: str,
    content_parts: list[dict[str, Any]],
    attachments: list[dict[str, Any]] | None = None,
    metadata: dict[str, str] | None = None,
    assistant_id: str | None = None,
    run_id: str | None = None,
    input_of: str | None = None,
    status: MessageStatus = "completed",
) -> Item:
    """A new message row (not yet added to a session), its content already in wire shape;
    nothing is validated here.

    A message created complete (every message a client creates) has `completed_at` equal to
    `created_at`; one created `in_progress` has it null until the run engine completes it.
    """
    message_id = new_id(Prefix.MESSAGE)
    created_at = created_at_of(message_id)
    return Item(
        id=message_id,
        project=project,
        created_at=created_at,
        thread_id=thread_id,
        position=position_of(message_id),
        type="message",
        role=role,
        content=content_parts,
        status=status,
        incomplete_details=None,
        completed_at=created_at if status == "completed" else None,
        incomplete_at=created_at if status == "incomplete" else None,
        assistant_id=assistant_id,
        run_id=run_id,
        input_of=input_of,
        call_id=None,
        data=None,
        attachments=attachments if attachments is not None else [],
        metadata_=metadata or {},
    )


async def _check_files(session: AsyncSession, project: str, named: list[tuple[str, str]]) -> None:
    """400 unless every `(param, file_id)` names a file of `project`; one query for all."""
    for param, file_id in named:
        check_prefix(file_id, Prefix.FILE, param)
    missing = set(await files.missing_ids(session, project, [file_id for _, file_id in named]))
    for param, file_id in named:
        if file_id in missing:
            raise InvalidRequestError(
                f"No file found with id '{file_id}'.", param=param, code="invalid_file_id"
            )


def _content(parts: list[ContentPartParam]) -> list[dict[str, Any]]:
    """Request content parts in the stored (wire) shape."""
    stored: list[dict[str, Any]] = []
    for part in parts:
        if part.type == "text":
            stored.append({"type": "text", "text": {"value": part.text, "annotations": []}})
        elif part.type == "image_file":
            assert part.image_file is not None
            stored.append({"type": "image_file", "image_file": part.image_file.model_dump()})
        else:
            assert part.image_url is not None
            stored.append({"type": "image_url", "image_url": part.image_url.model_dump()})
    return stored


def _named_files(body: MessageCreate, param: str) -> list[tuple[str, str]]:
    """Every file id `body` names, with the parameter that names it."""
    named = [
        (f"{param}content[{index}].image_file.file_id", part.image_file.file_id)
        for index, part in enumerate(body.content)
        if part.image_file is not None
    ]
    named += [
        (f"{param}attachments[{index}].file_id", attachment.file_id)
        for index, attachment in enumerate(body.attachments or [])
    ]
    return named


async def create_from_request(
    session: AsyncSession, thread: Thread, body: MessageCreate, *, param: str = ""
) -> Item:
    """Create a message from a request body, without the active-run check.

    `param` prefixes the names in errors, e.g. `messages[0].` or `additional_messages[1].`.
    """
    await _check_files(session, thread.project, _named_files(body, param))
    message = new_message(
        thread.project,
        thread.id,
        role=body.role,
        content_parts=_content(body.content),
        attachments=[attachment.model_dump() for attachment in body.attachments or []],
        metadata=body.metadata,
    )
    await repository.add(session, message)
    searchable = [
        attachment.file_id
        for attachment in body.attachments or []
        if any(tool.type == "file_search" for tool in attachment.tools)
    ]
    await vector_stores.attach_to_thread(session, thread, searchable)
    return message


async def create(session: AsyncSession, thread: Thread, body: MessageCreate) -> Item:
    await ensure_no_active_run(session, thread)
    return await create_from_request(session, thread, body)


async def modify(session: AsyncSession, row: Item, body: MessageModify) -> Item:
    if "metadata" in body.model_fields_set:
        row.metadata_ = body.metadata or {}
    await session.flush()
    return row


async def list_page(
    session: AsyncSession, thread: Thread, page: Page, *, run_id: str | None = None
) -> tuple[Sequence[Item], bool]:
    return await repository.list_page(session, thread.id, page, run_id=run_id)


async def delete(session: AsyncSession, row: Item) -> None:
    await repository.delete_one(session, row)

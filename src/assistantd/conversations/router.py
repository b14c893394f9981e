"""HTTP routes of the Conversations API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query

from assistantd.containers.owned import delete_owned
from assistantd.conversations import service
from assistantd.conversations.schemas import (
    ConversationCreate,
    ConversationObject,
    ConversationUpdate,
    ItemsCreate,
)
from assistantd.deps import (
    BlobsDep,
    PageDep,
    ProjectDep,
    SandboxesDep,
    SealerDep,
    SessionDep,
)
from assistantd.items import render as items
from assistantd.kit.pagination import list_response
from assistantd.kit.schemas import DeletedObject, ListResponse
from assistantd.responses.schemas import Include
from assistantd.threads import service as threads

router = APIRouter(tags=["conversations"])

IncludeQuery = Annotated[list[Include] | None, Query(alias="include[]")]


@router.post("/conversations")
async def create_conversation(
    body: ConversationCreate, session: SessionDep, project: ProjectDep, sealer: SealerDep
) -> ConversationObject:
    """Create a conversation, with up to 20 first items."""
    return service.render(await service.create(session, project, body, sealer))


@router.get("/conversations/{conversation_id}")
async def get_conversation(
    conversation_id: str, session: SessionDep, project: ProjectDep
) -> ConversationObject:
    """Retrieve a conversation."""
    return service.render(await service.require(session, project, conversation_id))


@router.post("/conversations/{conversation_id}")
async def update_conversation(
    conversation_id: str, body: ConversationUpdate, session: SessionDep, project: ProjectDep
) -> ConversationObject:
    """Replace a conversation's metadata."""
    row = await service.require(session, project, conversation_id)
    row.metadata_ = body.metadata or {}
    await session.flush()
    return service.render(row)


@router.delete("/conversations/{conversation_id}")
async def delete_conversation(
    conversation_id: str,
    session: SessionDep,
    project: ProjectDep,
    blobs: BlobsDep,
    sandboxes: SandboxesDep,
    background: BackgroundTasks,
) -> DeletedObject:
    """Delete a conversation (the items its responses hold stay with them) and the auto
    containers its responses ran code in."""
    row = await service.require(session, project, conversation_id)
    await threads.delete(session, row)
    await delete_owned(
        session,
        project,
        row.id,
        blobs=blobs,
        sandboxes=sandboxes,
        after_commit=background.add_task,
    )
    return DeletedObject(id=row.id, object="conversation.deleted")


@router.post("/conversations/{conversation_id}/items")
async def create_items(
    conversation_id: str,
    body: ItemsCreate,
    session: SessionDep,
    project: ProjectDep,
    sealer: SealerDep,
    include: IncludeQuery = None,
) -> ListResponse[dict[str, Any]]:
    """Add up to 20 items to a conversation."""
    row = await service.require(session, project, conversation_id)
    added = await service.append_items(session, row, body.items, sealer)
    files = await items.filenames(session, added)
    wanted = frozenset(include or ())
    return list_response(added, False, lambda item: items.item(item, wanted, files))


@router.get("/conversations/{conversation_id}/items")
async def list_items(
    conversation_id: str,
    session: SessionDep,
    project: ProjectDep,
    page: PageDep,
    include: IncludeQuery = None,
) -> ListResponse[dict[str, Any]]:
    """List a conversation's items."""
    row = await service.require(session, project, conversation_id)
    rows, has_more = await service.list_items(session, row, page)
    files = await items.filenames(session, rows)
    wanted = frozenset(include or ())
    return list_response(rows, has_more, lambda item: items.item(item, wanted, files))


@router.get("/conversations/{conversation_id}/items/{item_id}")
async def get_item(
    conversation_id: str,
    item_id: str,
    session: SessionDep,
    project: ProjectDep,
    include: IncludeQuery = None,
) -> dict[str, Any]:
    """Retrieve an item of a conversation."""
    row = await service.require(session, project, conversation_id)
    item = await service.require_item(session, row, item_id)
    files = await items.filenames(session, [item])
    return items.item(item, frozenset(include or ()), files)


@router.delete("/conversations/{conversation_id}/items/{item_id}")
async def delete_item(
    conversation_id: str, item_id: str, session: SessionDep, project: ProjectDep
) -> ConversationObject:
    """Delete an item from a conversation."""
    row = await service.require(session, project, conversation_id)
    item = await service.require_item(session, row, item_id)
    await service.delete_item(session, item)
    return service.render(row)

"""HTTP routes for messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from assistantd.deps import MessageDep, PageDep, SessionDep, ThreadDep
from assistantd.kit.ids import Prefix, check_prefix
from assistantd.kit.pagination import list_response
from assistantd.kit.schemas import DeletedObject, ListResponse
from assistantd.messages import service
from assistantd.messages.schemas import MessageCreate, MessageModify, MessageObject

router = APIRouter(tags=["messages"])


@router.post("/threads/{thread_id}/messages")
async def create_message(
    thread: ThreadDep, body: MessageCreate, session: SessionDep
) -> MessageObject:
    """Create a message."""
    return service.render(await service.create(session, thread, body))


@router.get("/threads/{thread_id}/messages")
async def list_messages(
    thread: ThreadDep,
    session: SessionDep,
    page: PageDep,
    run_id: Annotated[str | None, Query()] = None,
) -> ListResponse[MessageObject]:
    """List the messages of a thread, optionally only those a run created."""
    check_prefix(run_id, (Prefix.RUN, Prefix.RESPONSE), "run_id")
    rows, has_more = await service.list_page(session, thread, page, run_id=run_id)
    return list_response(rows, has_more, service.render)


@router.get("/threads/{thread_id}/messages/{message_id}")
async def get_message(message: MessageDep) -> MessageObject:
    """Retrieve a message."""
    return service.render(message)


@router.post("/threads/{thread_id}/messages/{message_id}")
async def modify_message(
    message: MessageDep, body: MessageModify, session: SessionDep
) -> MessageObject:
    """Modify a message (its metadata)."""
    return service.render(await service.modify(session, message, body))


@router.delete("/threads/{thread_id}/messages/{message_id}")
async def delete_message(message: MessageDep, session: SessionDep) -> DeletedObject:
    """Delete a message."""
    await service.delete(session, message)
    return DeletedObject(id=message.id, object="thread.message.deleted")

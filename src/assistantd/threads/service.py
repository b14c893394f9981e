"""Thread use cases."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import Thread
from assistantd.errors import not_found
from assistantd.kit.ids import Prefix, created_at_of, new_id
from assistantd.messages import service as messages
from assistantd.threads import repository
from assistantd.threads.schemas import ThreadCreate, ThreadModify, ThreadObject
from assistantd.tools import resources


def render(row: Thread) -> ThreadObject:
    return ThreadObject(
        id=row.id,
        created_at=row.created_at,
        tool_resources=row.tool_resources,
        metadata=row.metadata_,
    )


async def require(session: AsyncSession, project: str, thread_id: str) -> Thread:
    row = await repository.get(session, project, thread_id)
    if row is None:
        raise not_found("thread", thread_id)
    return row


async def create_thread(
    session: AsyncSession, project: str, body: ThreadCreate | None = None
) -> Thread:
    """A new thread with its initial messages, created in the order given."""
    body = body or ThreadCreate()
    tool_resources = await resources.resolve(session, project, body.tool_resources)
    thread_id = new_id(Prefix.THREAD)
    row = Thread(
        id=thread_id,
        project=project,
        created_at=created_at_of(thread_id),
        tool_resources=tool_resources if tool_resources is not None else {},
        metadata_=body.metadata or {},
    )
    await repository.add(session, row)
    for index, message in enumerate(body.messages):
        await messages.create_from_request(session, row, message, param=f"messages[{index}].")
    return row


async def modify(session: AsyncSession, row: Thread, body: ThreadModify) -> Thread:
    given = body.model_fields_set
    if "tool_resources" in given and body.tool_resources is not None:
        resolved = await resources.resolve(session, row.project, body.tool_resources.as_resources())
        # Each tool named replaces its list; tools not named keep theirs.
        row.tool_resources = {**(row.tool_resources or {}), **(resolved or {})}
    if "metadata" in given:
        row.metadata_ = body.metadata or {}
    await session.flush()
    return row


async def delete(session: AsyncSession, row: Thread) -> None:
    await repository.delete(session, row)

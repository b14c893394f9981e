"""All SQL for messages (the message items of a thread)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.core import get_row
from assistantd.db.models import Item
from assistantd.kit.pagination import Page, paginate

# The roles the Assistants API shows (a Responses `developer` or `system` message in a
# conversation continued as a thread is not one of its messages).
ROLES = ("user", "assistant")


async def get(session: AsyncSession, project: str, message_id: str) -> Item | None:
    row = await get_row(session, Item, message_id)
    if row is None or row.project != project or row.type != "message" or row.role not in ROLES:
        return None
    return row


async def list_page(
    session: AsyncSession, thread_id: str, page: Page, *, run_id: str | None = None
) -> tuple[Sequence[Item], bool]:
    query = select(Item).where(
        Item.thread_id == thread_id, Item.type == "message", Item.role.in_(ROLES)
    )
    if run_id is not None:
        query = query.where(Item.run_id == run_id)
    return await paginate(session, query, Item.id, page)


async def add(session: AsyncSession, message: Item) -> Item:
    session.add(message)
    await session.flush()
    return message


async def delete_one(session: AsyncSession, message: Item) -> None:
    await session.delete(message)
    await session.flush()


async def delete_for_thread(session: AsyncSession, thread_id: str) -> None:
    await session.execute(delete(Item).where(Item.thread_id == thread_id))

"""All SQL for messages."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.core import get_row
from assistantd.db.models import Message
from assistantd.kit.pagination import Page, paginate


async def get(session: AsyncSession, project: str, message_id: str) -> Message | None:
    row = await get_row(session, Message, message_id)
    return row if row is not None and row.project == project else None


async def list_page(
    session: AsyncSession, thread_id: str, page: Page, *, run_id: str | None = None
) -> tuple[Sequence[Message], bool]:
    query = select(Message).where(Message.thread_id == thread_id)
    if run_id is not None:
        query = query.where(Message.run_id == run_id)
    return await paginate(session, query, Message.id, page)


async def add(session: AsyncSession, message: Message) -> Message:
    session.add(message)
    await session.flush()
    return message


async def delete_one(session: AsyncSession, message: Message) -> None:
    await session.delete(message)
    await session.flush()


async def delete_for_thread(session: AsyncSession, thread_id: str) -> None:
    await session.execute(delete(Message).where(Message.thread_id == thread_id))

"""All SQL for threads."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.core import get_row
from assistantd.db.models import Thread
from assistantd.messages import repository as messages


async def get(session: AsyncSession, project: str, thread_id: str) -> Thread | None:
    row = await get_row(session, Thread, thread_id)
    return row if row is not None and row.project == project else None


async def add(session: AsyncSession, thread: Thread) -> Thread:
    session.add(thread)
    await session.flush()
    return thread


async def delete(session: AsyncSession, thread: Thread) -> None:
    """Delete a thread and its messages (the foreign key cascades too; this does not rely on it)."""
    await messages.delete_for_thread(session, thread.id)
    await session.delete(thread)
    await session.flush()

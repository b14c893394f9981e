"""All SQL for threads."""

from __future__ import annotations

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.core import get_row
from assistantd.db.models import Item, Run, Thread
from assistantd.kit.ids import Prefix
from assistantd.messages import repository as messages


async def get(session: AsyncSession, project: str, thread_id: str) -> Thread | None:
    row = await get_row(session, Thread, thread_id)
    return row if row is not None and row.project == project else None


async def add(session: AsyncSession, thread: Thread) -> Thread:
    session.add(thread)
    await session.flush()
    return thread


async def delete(session: AsyncSession, thread: Thread) -> None:
    """Delete a thread (a conversation) and its items and runs (the foreign keys cascade too;
    this does not rely on them). Responses that ran on it stay, with their items: a response
    outlives its conversation."""
    await session.execute(
        update(Item)
        .where(
            Item.thread_id == thread.id,
            or_(
                Item.input_of.is_not(None), Item.run_id.startswith(Prefix.RESPONSE, autoescape=True)
            ),
        )
        .values(thread_id=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Run)
        .where(Run.thread_id == thread.id, Run.id.startswith(Prefix.RESPONSE, autoescape=True))
        .values(thread_id=None)
        .execution_options(synchronize_session=False)
    )
    await messages.delete_for_thread(session, thread.id)
    await session.delete(thread)
    await session.flush()

"""All SQL for assistants."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.core import get_row
from assistantd.db.models import Assistant
from assistantd.kit.pagination import Page, paginate


async def get(session: AsyncSession, project: str, assistant_id: str) -> Assistant | None:
    row = await get_row(session, Assistant, assistant_id)
    return row if row is not None and row.project == project else None


async def list_page(
    session: AsyncSession, project: str, page: Page
) -> tuple[Sequence[Assistant], bool]:
    query = select(Assistant).where(Assistant.project == project)
    return await paginate(session, query, Assistant.id, page)


async def add(session: AsyncSession, assistant: Assistant) -> Assistant:
    session.add(assistant)
    await session.flush()
    return assistant


async def delete(session: AsyncSession, assistant: Assistant) -> None:
    await session.delete(assistant)
    await session.flush()

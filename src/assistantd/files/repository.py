"""All SQL for files."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import File


async def get(session: AsyncSession, project: str, file_id: str) -> File | None:
    row = await session.get(File, file_id)
    return row if row is not None and row.project == project else None


async def missing_ids(session: AsyncSession, project: str, file_ids: Iterable[str]) -> list[str]:
    """Those of `file_ids` that are not files of `project`, in the order given."""
    wanted = list(dict.fromkeys(file_ids))
    if not wanted:
        return []
    found = set(
        await session.scalars(select(File.id).where(File.project == project, File.id.in_(wanted)))
    )
    return [file_id for file_id in wanted if file_id not in found]

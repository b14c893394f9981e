"""All SQL for uploads and their parts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.core import get_row
from assistantd.db.models import Upload, UploadPart


async def get(session: AsyncSession, project: str, upload_id: str) -> Upload | None:
    row = await get_row(session, Upload, upload_id)
    return row if row is not None and row.project == project else None


async def lock(session: AsyncSession, project: str, upload_id: str) -> Upload | None:
    """The upload, re-read and locked for the rest of the transaction (PostgreSQL row lock;
    SQLite's write transaction already excludes other writers)."""
    query = (
        select(Upload)
        .where(Upload.id == upload_id, Upload.project == project)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).one_or_none()


async def add(session: AsyncSession, row: Upload | UploadPart) -> None:
    session.add(row)
    await session.flush()


async def parts_by_id(
    session: AsyncSession, upload_id: str, part_ids: Iterable[str]
) -> dict[str, UploadPart]:
    """The parts of `upload_id` among `part_ids`, by id (others are simply absent)."""
    wanted = list(dict.fromkeys(part_ids))
    if not wanted:
        return {}
    query = select(UploadPart).where(UploadPart.upload_id == upload_id, UploadPart.id.in_(wanted))
    return {part.id: part for part in await session.scalars(query)}


async def bytes_received(session: AsyncSession, upload_id: str) -> int:
    query = select(func.coalesce(func.sum(UploadPart.bytes), 0)).where(
        UploadPart.upload_id == upload_id
    )
    return int(await session.scalar(query) or 0)


async def delete_parts(session: AsyncSession, upload_id: str) -> list[str]:
    """Delete every part of the upload; returns their blob keys."""
    keys = list(
        await session.scalars(select(UploadPart.blob_key).where(UploadPart.upload_id == upload_id))
    )
    await session.execute(delete(UploadPart).where(UploadPart.upload_id == upload_id))
    return keys


async def stale_pending(session: AsyncSession, at: int, limit: int) -> Sequence[Upload]:
    """Up to `limit` pending uploads of any project that expired before `at`, locked."""
    query = (
        select(Upload)
        .where(Upload.status == "pending", Upload.expires_at <= at)
        .order_by(Upload.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(query)).all()

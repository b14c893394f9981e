"""All SQL for files.

A file whose `expires_at` has passed is gone: no query here returns it, so it answers 404 and
counts as a missing id everywhere, from the second it expires. `expired` finds such rows for the
sweep that deletes them and their blobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.core import get_row
from assistantd.db.models import File, UploadPart
from assistantd.kit.pagination import Page, paginate
from assistantd.kit.timeutil import now


def _alive(at: int) -> ColumnElement[bool]:
    return or_(File.expires_at.is_(None), File.expires_at > at)


async def get(session: AsyncSession, project: str, file_id: str) -> File | None:
    row = await get_row(session, File, file_id)
    if row is None or row.project != project:
        return None
    if row.expires_at is not None and row.expires_at <= now():
        return None
    return row


async def missing_ids(session: AsyncSession, project: str, file_ids: Iterable[str]) -> list[str]:
    """Those of `file_ids` that are not files of `project`, in the order given."""
    wanted = list(dict.fromkeys(file_ids))
    if not wanted:
        return []
    found = set(
        await session.scalars(
            select(File.id).where(File.project == project, File.id.in_(wanted), _alive(now()))
        )
    )
    return [file_id for file_id in wanted if file_id not in found]


async def list_page(
    session: AsyncSession, project: str, page: Page, *, purpose: str | None
) -> tuple[Sequence[File], bool]:
    query = select(File).where(File.project == project, _alive(now()))
    if purpose is not None:
        query = query.where(File.purpose == purpose)
    return await paginate(session, query, File.id, page)


async def add(session: AsyncSession, file: File) -> File:
    session.add(file)
    await session.flush()
    return file


async def delete(session: AsyncSession, file: File) -> None:
    await session.delete(file)
    await session.flush()


async def expired(session: AsyncSession, at: int, limit: int) -> Sequence[File]:
    """Up to `limit` files of any project whose expiry has passed, locked for deletion."""
    query = (
        select(File)
        .where(File.expires_at.is_not(None), File.expires_at <= at)
        .order_by(File.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(query)).all()


async def referenced_blob_keys(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    """Those of `keys` that a file (expired or not) or an upload part stores its bytes under."""
    if not keys:
        return set()
    files = select(File.blob_key).where(File.blob_key.in_(keys))
    parts = select(UploadPart.blob_key).where(UploadPart.blob_key.in_(keys))
    return set(await session.scalars(files.union(parts)))

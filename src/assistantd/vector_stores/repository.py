"""All SQL for vector stores, their files and file batches (chunks: see `index`)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import (
    File,
    VectorStore,
    VectorStoreChunk,
    VectorStoreFile,
    VectorStoreFileBatch,
)
from assistantd.kit.pagination import Page, paginate
from assistantd.kit.timeutil import now

STATUSES = ("in_progress", "completed", "failed", "cancelled")


# --- stores ------------------------------------------------------------------------------------


async def get(session: AsyncSession, project: str, store_id: str) -> VectorStore | None:
    row = await session.get(VectorStore, store_id)
    return row if row is not None and row.project == project else None


async def list_page(
    session: AsyncSession, project: str, page: Page
) -> tuple[Sequence[VectorStore], bool]:
    query = select(VectorStore).where(VectorStore.project == project)
    return await paginate(session, query, VectorStore.id, page)


async def existing_ids(session: AsyncSession, project: str, ids: Iterable[str]) -> set[str]:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return set()
    rows = await session.scalars(
        select(VectorStore.id).where(VectorStore.project == project, VectorStore.id.in_(wanted))
    )
    return set(rows)


async def add(session: AsyncSession, row: Any) -> None:
    session.add(row)
    await session.flush()


async def bump_generation(session: AsyncSession, store_ids: Iterable[str]) -> None:
    ids = list(dict.fromkeys(store_ids))
    if ids:
        await session.execute(
            update(VectorStore)
            .where(VectorStore.id.in_(ids))
            .values(generation=VectorStore.generation + 1)
            .execution_options(synchronize_session=False)
        )


async def touch(session: AsyncSession, store_ids: Iterable[str]) -> None:
    """Mark stores active now (moves `last_active_at` and so `expires_at`)."""
    stamp = now()
    for store in await session.scalars(
        select(VectorStore).where(VectorStore.id.in_(list(store_ids)))
    ):
        store.last_active_at = stamp
        if store.expires_after:
            store.expires_at = stamp + int(store.expires_after["days"]) * 86400
    await session.flush()


async def delete_store(session: AsyncSession, store: VectorStore) -> None:
    await session.execute(
        delete(VectorStoreFile)
        .where(VectorStoreFile.vector_store_id == store.id)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        delete(VectorStoreFileBatch)
        .where(VectorStoreFileBatch.vector_store_id == store.id)
        .execution_options(synchronize_session=False)
    )
    await session.delete(store)
    await session.flush()


async def thread_store(session: AsyncSession, project: str, thread_id: str) -> VectorStore | None:
    return await session.scalar(
        select(VectorStore)
        .where(VectorStore.project == project, VectorStore.thread_id == thread_id)
        .order_by(VectorStore.id)
        .limit(1)
    )


# --- counts ------------------------------------------------------------------------------------


async def file_counts(
    session: AsyncSession, store_ids: Sequence[str]
) -> dict[str, tuple[dict[str, int], int]]:
    """{store id: ({status: count}, usage bytes of completed files)}."""
    counts: dict[str, tuple[dict[str, int], int]] = {
        store_id: (dict.fromkeys(STATUSES, 0), 0) for store_id in store_ids
    }
    if not store_ids:
        return counts
    rows = await session.execute(
        select(
            VectorStoreFile.vector_store_id,
            VectorStoreFile.status,
            func.count(),
            func.coalesce(func.sum(VectorStoreFile.usage_bytes), 0),
        )
        .where(VectorStoreFile.vector_store_id.in_(list(store_ids)))
        .group_by(VectorStoreFile.vector_store_id, VectorStoreFile.status)
    )
    for store_id, status, count, usage in rows:
        by_status, total_usage = counts[store_id]
        by_status[status] = int(count)
        if status == "completed":
            total_usage += int(usage)
        counts[store_id] = (by_status, total_usage)
    return counts


async def batch_counts(session: AsyncSession, batch_id: str) -> dict[str, int]:
    rows = await session.execute(
        select(VectorStoreFile.status, func.count())
        .where(VectorStoreFile.batch_id == batch_id)
        .group_by(VectorStoreFile.status)
    )
    counts = dict.fromkeys(STATUSES, 0)
    for status, count in rows:
        counts[status] = int(count)
    return counts


# --- files -------------------------------------------------------------------------------------


async def get_file(session: AsyncSession, store_id: str, file_id: str) -> VectorStoreFile | None:
    return await session.get(VectorStoreFile, (store_id, file_id))


def _files_query(store_id: str, status: str | None) -> Select[VectorStoreFile]:
    query = select(VectorStoreFile).where(VectorStoreFile.vector_store_id == store_id)
    if status is not None:
        query = query.where(VectorStoreFile.status == status)
    return query


async def list_files(
    session: AsyncSession,
    store_id: str,
    page: Page,
    *,
    status: str | None,
    batch_id: str | None = None,
) -> tuple[Sequence[VectorStoreFile], bool]:
    query = _files_query(store_id, status)
    if batch_id is not None:
        query = query.where(VectorStoreFile.batch_id == batch_id)
    return await paginate(session, query, VectorStoreFile.file_id, page)


async def files_of_store(
    session: AsyncSession, store_id: str
) -> Sequence[tuple[str, str, dict[str, Any] | None]]:
    """(file id, status, attributes) of every file in the store."""
    rows = await session.execute(
        select(VectorStoreFile.file_id, VectorStoreFile.status, VectorStoreFile.attributes).where(
            VectorStoreFile.vector_store_id == store_id
        )
    )
    return [(row[0], row[1], row[2]) for row in rows]


async def unfinished_files(session: AsyncSession, store_id: str) -> set[str]:
    """Files of the store that are not `completed` (their chunks must not be searched)."""
    rows = await session.scalars(
        select(VectorStoreFile.file_id).where(
            VectorStoreFile.vector_store_id == store_id, VectorStoreFile.status != "completed"
        )
    )
    return set(rows)


async def stores_of_file(session: AsyncSession, file_id: str) -> Sequence[VectorStoreFile]:
    return (
        await session.scalars(select(VectorStoreFile).where(VectorStoreFile.file_id == file_id))
    ).all()


async def chunk_spans(
    session: AsyncSession, store_id: str, file_id: str
) -> Sequence[tuple[int, int, str]]:
    """(start, end, text) of a file's chunks in a store, in order."""
    rows = await session.execute(
        select(VectorStoreChunk.char_start, VectorStoreChunk.char_end, VectorStoreChunk.text)
        .where(
            VectorStoreChunk.vector_store_id == store_id,
            VectorStoreChunk.file_id == file_id,
        )
        .order_by(VectorStoreChunk.seq)
    )
    return [(int(row[0]), int(row[1]), row[2]) for row in rows]


async def filenames(session: AsyncSession, file_ids: Iterable[str]) -> dict[str, str]:
    ids = list(dict.fromkeys(file_ids))
    if not ids:
        return {}
    rows = await session.execute(select(File.id, File.filename).where(File.id.in_(ids)))
    return {row[0]: row[1] for row in rows}


async def cancel_batch_files(session: AsyncSession, batch_id: str) -> list[str]:
    """Cancel the batch's files still in progress; returns their ids."""
    result = await session.execute(
        update(VectorStoreFile)
        .where(VectorStoreFile.batch_id == batch_id, VectorStoreFile.status == "in_progress")
        .values(status="cancelled", lease_owner=None, lease_expires_at=None)
        .returning(VectorStoreFile.file_id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


# --- ingestion jobs ----------------------------------------------------------------------------


async def claim_files(
    session: AsyncSession, token_prefix: str, limit: int, lease_seconds: float, *, skip_locked: bool
) -> list[tuple[str, str, str]]:
    """Take up to `limit` files waiting for ingestion (new, or whose worker's lease ran out).

    Returns (store id, file id, claim token); each claim gets its own token.
    """
    clock = time.time()
    query = (
        select(VectorStoreFile.vector_store_id, VectorStoreFile.file_id, VectorStoreFile.attempts)
        .where(
            VectorStoreFile.status == "in_progress",
            (VectorStoreFile.lease_expires_at.is_(None))
            | (VectorStoreFile.lease_expires_at < clock),
        )
        .order_by(VectorStoreFile.created_at)
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    claimed: list[tuple[str, str, str]] = []
    for store_id, file_id, attempts in (await session.execute(query)).all():
        token = f"{token_prefix}-{attempts + 1}-{time.monotonic_ns() % 10**9}"
        result = await session.execute(
            update(VectorStoreFile)
            .where(
                VectorStoreFile.vector_store_id == store_id,
                VectorStoreFile.file_id == file_id,
                VectorStoreFile.status == "in_progress",
                (VectorStoreFile.lease_expires_at.is_(None))
                | (VectorStoreFile.lease_expires_at < clock),
            )
            .values(
                lease_owner=token,
                lease_expires_at=clock + lease_seconds,
                attempts=VectorStoreFile.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            claimed.append((store_id, file_id, token))
    return claimed


async def renew_lease(
    session: AsyncSession, store_id: str, file_id: str, token: str, lease_seconds: float
) -> bool:
    """Extend a claim; False when the file was cancelled, deleted or taken over."""
    result = await session.execute(
        update(VectorStoreFile)
        .where(
            VectorStoreFile.vector_store_id == store_id,
            VectorStoreFile.file_id == file_id,
            VectorStoreFile.lease_owner == token,
            VectorStoreFile.status == "in_progress",
        )
        .values(lease_expires_at=time.time() + lease_seconds)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def holds(session: AsyncSession, store_id: str, file_id: str, token: str) -> bool:
    """Whether the claim `token` still stands (the file is still in progress under it)."""
    row = await session.scalar(
        select(VectorStoreFile.status).where(
            VectorStoreFile.vector_store_id == store_id,
            VectorStoreFile.file_id == file_id,
            VectorStoreFile.lease_owner == token,
        )
    )
    return row == "in_progress"


async def finish_file(
    session: AsyncSession, store_id: str, file_id: str, token: str, **values: Any
) -> bool:
    """Guarded end of an ingestion: only the claim holder, only from `in_progress`."""
    result = await session.execute(
        update(VectorStoreFile)
        .where(
            VectorStoreFile.vector_store_id == store_id,
            VectorStoreFile.file_id == file_id,
            VectorStoreFile.lease_owner == token,
            VectorStoreFile.status == "in_progress",
        )
        .values(lease_owner=None, lease_expires_at=None, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]

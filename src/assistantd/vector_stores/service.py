"""Vector store use cases: stores, attached files, file batches. Ingestion itself is `ingest`.

Attaching a file writes an `in_progress` row in the request's transaction; a worker picks it up
after commit (see `ingest`). Counts, usage and status are read from the file rows, so they are
exact whatever state ingestion is in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, cast

from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import Thread, VectorStore, VectorStoreFile, VectorStoreFileBatch
from assistantd.errors import InvalidRequestError, not_found
from assistantd.files import repository as files
from assistantd.kit.ids import Prefix, check_prefix, created_at_of, new_id
from assistantd.kit.pagination import Page
from assistantd.kit.timeutil import now
from assistantd.tools.schemas import ChunkingStrategy
from assistantd.vector_stores import index, repository
from assistantd.vector_stores.chunking import resolve_strategy
from assistantd.vector_stores.schemas import (
    FileCounts,
    VectorStoreCreate,
    VectorStoreFileObject,
    VectorStoreModify,
    VectorStoreObject,
)

FileStatus = Literal["in_progress", "completed", "cancelled", "failed"]
THREAD_STORE_EXPIRY_DAYS = 7  # a thread's own store, as OpenAI sets it


def counts(by_status: dict[str, int]) -> FileCounts:
    return FileCounts(**by_status, total=sum(by_status.values()))


def is_expired(row: VectorStore) -> bool:
    return row.expires_at is not None and row.expires_at <= now()


def _render(row: VectorStore, by_status: dict[str, int], usage: int) -> VectorStoreObject:
    status: Literal["expired", "in_progress", "completed"] = "completed"
    if is_expired(row):
        status = "expired"
    elif by_status.get("in_progress"):
        status = "in_progress"
    return VectorStoreObject(
        id=row.id,
        created_at=row.created_at,
        name=row.name or "",
        description=row.description,
        usage_bytes=usage,
        file_counts=counts(by_status),
        status=status,
        expires_after=row.expires_after,
        expires_at=row.expires_at,
        last_active_at=row.last_active_at,
        metadata=row.metadata_,
    )


async def render(session: AsyncSession, row: VectorStore) -> VectorStoreObject:
    by_status, usage = (await repository.file_counts(session, [row.id]))[row.id]
    return _render(row, by_status, usage)


async def render_many(
    session: AsyncSession, rows: Sequence[VectorStore]
) -> list[VectorStoreObject]:
    counts = await repository.file_counts(session, [row.id for row in rows])
    return [_render(row, *counts[row.id]) for row in rows]


def render_file(row: VectorStoreFile) -> VectorStoreFileObject:
    return VectorStoreFileObject(
        id=row.file_id,
        usage_bytes=row.usage_bytes,
        created_at=row.created_at,
        vector_store_id=row.vector_store_id,
        status=cast(FileStatus, row.status),
        last_error=row.last_error,
        chunking_strategy=row.chunking_strategy,
        attributes=row.attributes,
    )


# --- lookups -----------------------------------------------------------------------------------


async def require(session: AsyncSession, project: str, store_id: str) -> VectorStore:
    row = await repository.get(session, project, store_id)
    if row is None:
        raise not_found("vector store", store_id)
    return row


async def require_file(session: AsyncSession, store: VectorStore, file_id: str) -> VectorStoreFile:
    row = await repository.get_file(session, store.id, file_id)
    if row is None:
        raise not_found("file", file_id)
    return row


async def require_batch(
    session: AsyncSession, store: VectorStore, batch_id: str
) -> VectorStoreFileBatch:
    row = await session.get(VectorStoreFileBatch, batch_id)
    if row is None or row.vector_store_id != store.id:
        raise not_found("file batch", batch_id)
    return row


async def check_store_ids(
    session: AsyncSession, project: str, store_ids: Sequence[str], param: str
) -> None:
    """400 unless every id names a vector store of `project`."""
    for index_, store_id in enumerate(store_ids):
        check_prefix(store_id, Prefix.VECTOR_STORE, f"{param}[{index_}]")
    found = await repository.existing_ids(session, project, store_ids)
    for store_id in store_ids:
        if store_id not in found:
            raise InvalidRequestError(
                f"No vector store found with id '{store_id}'.", param=param, code="not_found"
            )


async def check_files(
    session: AsyncSession, project: str, file_ids: Sequence[str], param: str
) -> None:
    for index_, file_id in enumerate(file_ids):
        check_prefix(file_id, Prefix.FILE, f"{param}[{index_}]" if param != "file_id" else param)
    missing = await files.missing_ids(session, project, file_ids)
    if missing:
        raise InvalidRequestError(
            f"No file found with id '{missing[0]}'.", param=param, code="invalid_file_id"
        )


# --- stores ------------------------------------------------------------------------------------


async def create(
    session: AsyncSession,
    project: str,
    body: VectorStoreCreate,
    *,
    thread_id: str | None = None,
    param: str = "",
) -> VectorStore:
    file_ids = list(dict.fromkeys(body.file_ids))
    if body.chunking_strategy is not None and not file_ids:
        raise InvalidRequestError(
            "'chunking_strategy' is only applicable if 'file_ids' is non-empty.",
            param=f"{param}chunking_strategy",
        )
    await check_files(session, project, file_ids, f"{param}file_ids")
    store_id = new_id(Prefix.VECTOR_STORE)
    created_at = created_at_of(store_id)
    expires_after = body.expires_after.model_dump() if body.expires_after else None
    if expires_after is None and thread_id is not None:
        expires_after = {"anchor": "last_active_at", "days": THREAD_STORE_EXPIRY_DAYS}
    row = VectorStore(
        id=store_id,
        project=project,
        created_at=created_at,
        name=body.name,
        description=body.description,
        metadata_=body.metadata or {},
        expires_after=expires_after,
        expires_at=created_at + expires_after["days"] * 86400 if expires_after else None,
        last_active_at=created_at,
        generation=0,
        thread_id=thread_id,
    )
    await repository.add(session, row)
    for file_id in file_ids:
        await attach_file(session, row, file_id, body.chunking_strategy, None, None)
    return row


async def modify(session: AsyncSession, row: VectorStore, body: VectorStoreModify) -> VectorStore:
    given = body.model_fields_set
    if "name" in given:
        row.name = body.name
    if "metadata" in given:
        row.metadata_ = body.metadata or {}
    if "expires_after" in given:
        row.expires_after = body.expires_after.model_dump() if body.expires_after else None
        row.expires_at = (
            row.last_active_at + row.expires_after["days"] * 86400 if row.expires_after else None
        )
    await session.flush()
    return row


async def list_page(
    session: AsyncSession, project: str, page: Page
) -> tuple[Sequence[VectorStore], bool]:
    return await repository.list_page(session, project, page)


async def delete(session: AsyncSession, row: VectorStore) -> None:
    await index.delete_store_chunks(session, row.id)
    await repository.delete_store(session, row)


# --- files -------------------------------------------------------------------------------------


async def attach_file(
    session: AsyncSession,
    store: VectorStore,
    file_id: str,
    chunking: ChunkingStrategy | None,
    attributes: dict[str, Any] | None,
    batch_id: str | None,
) -> VectorStoreFile:
    """Attach (or re-attach, which re-ingests) a file; the worker takes it after commit."""
    strategy = resolve_strategy(chunking.model_dump() if chunking is not None else None)
    row = await repository.get_file(session, store.id, file_id)
    if row is None:
        row = VectorStoreFile(
            vector_store_id=store.id,
            file_id=file_id,
            project=store.project,
            attempts=0,
            chunk_count=0,
        )
        session.add(row)
    elif row.status == "completed":
        await repository.bump_generation(session, [store.id])
    row.created_at = now()
    row.status = "in_progress"
    row.last_error = None
    row.usage_bytes = 0
    row.chunking_strategy = strategy
    row.attributes = attributes
    row.batch_id = batch_id
    row.lease_owner = None
    row.lease_expires_at = None
    row.attempts = 0
    await session.flush()
    return row


async def attach(
    session: AsyncSession,
    store: VectorStore,
    file_id: str,
    chunking: ChunkingStrategy | None,
    attributes: dict[str, Any] | None,
) -> VectorStoreFile:
    await check_files(session, store.project, [file_id], "file_id")
    row = await attach_file(session, store, file_id, chunking, attributes, None)
    await repository.touch(session, [store.id])
    return row


async def update_attributes(
    session: AsyncSession, row: VectorStoreFile, attributes: dict[str, Any] | None
) -> VectorStoreFile:
    row.attributes = attributes
    await session.flush()
    return row


async def list_files(
    session: AsyncSession,
    store: VectorStore,
    page: Page,
    status: str | None,
    batch_id: str | None = None,
) -> tuple[Sequence[VectorStoreFile], bool]:
    return await repository.list_files(session, store.id, page, status=status, batch_id=batch_id)


async def detach(session: AsyncSession, row: VectorStoreFile) -> None:
    """Remove a file from a store (the file itself stays)."""
    await index.delete_chunks(session, row.vector_store_id, row.file_id, keep=False)
    await repository.bump_generation(session, [row.vector_store_id])
    await session.delete(row)
    await session.flush()


async def detach_everywhere(session: AsyncSession, file_id: str) -> None:
    """A deleted file leaves every vector store it was in."""
    for row in await repository.stores_of_file(session, file_id):
        await detach(session, row)


async def file_content(session: AsyncSession, row: VectorStoreFile) -> str:
    """The parsed text, rebuilt from the chunks (they overlap, and record where they lie)."""
    if row.status != "completed":
        return ""
    parts: list[str] = []
    end = 0
    for start, chunk_end, text in await repository.chunk_spans(
        session, row.vector_store_id, row.file_id
    ):
        if start < end:
            parts.append(text[end - start :])
        else:
            parts.append(("\n" if parts else "") + text)
        end = max(end, chunk_end)
    return "".join(parts)


# --- message attachments -----------------------------------------------------------------------


async def attach_to_thread(session: AsyncSession, thread: Thread, file_ids: Sequence[str]) -> None:
    """Files attached to a message for `file_search` go into the thread's vector store: the one
    attached to the thread, else a new one of its own (expiring 7 days after last use)."""
    if not file_ids:
        return
    resources = dict(thread.tool_resources or {})
    store_ids = list((resources.get("file_search") or {}).get("vector_store_ids") or [])
    store = await repository.get(session, thread.project, store_ids[0]) if store_ids else None
    if store is None:
        store = await create(session, thread.project, VectorStoreCreate(), thread_id=thread.id)
        resources["file_search"] = {"vector_store_ids": [store.id]}
        thread.tool_resources = resources
    for file_id in dict.fromkeys(file_ids):
        existing = await repository.get_file(session, store.id, file_id)
        if existing is None or existing.status in ("failed", "cancelled"):
            await attach_file(session, store, file_id, None, None, None)
    await repository.touch(session, [store.id])

"""File batch use cases: attach many files at once, follow them, cancel what is left."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import VectorStore, VectorStoreFileBatch
from assistantd.kit.ids import Prefix, created_at_of, new_id
from assistantd.vector_stores import index, repository
from assistantd.vector_stores.schemas import FileBatchCreate, VectorStoreFileBatchObject
from assistantd.vector_stores.service import FileStatus, attach_file, check_files, counts


async def render_batch(
    session: AsyncSession, row: VectorStoreFileBatch
) -> VectorStoreFileBatchObject:
    by_status = await repository.batch_counts(session, row.id)
    status: FileStatus = "completed"
    if row.cancelled:
        status = "cancelled"
    elif by_status["in_progress"]:
        status = "in_progress"
    elif by_status["completed"] == 0 and by_status["failed"] > 0:
        status = "failed"
    return VectorStoreFileBatchObject(
        id=row.id,
        created_at=row.created_at,
        vector_store_id=row.vector_store_id,
        status=status,
        file_counts=counts(by_status),
    )


async def create_batch(
    session: AsyncSession, store: VectorStore, body: FileBatchCreate
) -> VectorStoreFileBatch:
    if body.files is not None:
        entries = [
            (
                entry.file_id,
                entry.chunking_strategy or body.chunking_strategy,
                entry.attributes if "attributes" in entry.model_fields_set else body.attributes,
            )
            for entry in body.files
        ]
        param = "files"
    else:
        assert body.file_ids is not None
        entries = [(file_id, body.chunking_strategy, body.attributes) for file_id in body.file_ids]
        param = "file_ids"
    await check_files(session, store.project, [entry[0] for entry in entries], param)
    batch_id = new_id(Prefix.FILE_BATCH)
    batch = VectorStoreFileBatch(
        id=batch_id,
        project=store.project,
        created_at=created_at_of(batch_id),
        vector_store_id=store.id,
        cancelled=False,
    )
    await repository.add(session, batch)
    seen: set[str] = set()
    for file_id, chunking, attributes in entries:
        if file_id not in seen:
            seen.add(file_id)
            await attach_file(session, store, file_id, chunking, attributes, batch_id)
    await repository.touch(session, [store.id])
    return batch


async def cancel_batch(session: AsyncSession, batch: VectorStoreFileBatch) -> None:
    counts = await repository.batch_counts(session, batch.id)
    if not counts["in_progress"] and not batch.cancelled:
        return  # finished already: nothing to cancel, the status stays as it is
    for file_id in await repository.cancel_batch_files(session, batch.id):
        await index.delete_chunks(session, batch.vector_store_id, file_id, keep=False)
    batch.cancelled = True
    await session.flush()

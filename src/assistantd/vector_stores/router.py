"""HTTP routes for vector stores, their files, file batches and search."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from assistantd.deps import (
    FileBatchDep,
    PageDep,
    ProjectDep,
    SessionDep,
    SettingsDep,
    VectorStoreDep,
    VectorStoreFileDep,
)
from assistantd.kit.ids import Prefix, check_prefix
from assistantd.kit.pagination import list_response
from assistantd.kit.schemas import DeletedObject, ListResponse
from assistantd.vector_stores import batches, service
from assistantd.vector_stores.ingest import wake_after_commit
from assistantd.vector_stores.schemas import (
    FileBatchCreate,
    FileContentPage,
    FileContentPart,
    SearchRequest,
    SearchResultsPage,
    VectorStoreCreate,
    VectorStoreFileBatchObject,
    VectorStoreFileCreate,
    VectorStoreFileModify,
    VectorStoreFileObject,
    VectorStoreModify,
    VectorStoreObject,
)
from assistantd.vector_stores.search_use_case import search_store

router = APIRouter(tags=["vector_stores"])

StatusFilter = Annotated[
    Literal["in_progress", "completed", "failed", "cancelled"] | None, Query(alias="filter")
]


def _poll_hint(response: Response, settings: SettingsDep) -> None:
    response.headers["openai-poll-after-ms"] = str(settings.poll_after_ms)


@router.post("/vector_stores")
async def create_vector_store(
    body: VectorStoreCreate, request: Request, session: SessionDep, project: ProjectDep
) -> VectorStoreObject:
    """Create a vector store."""
    row = await service.create(session, project, body)
    wake_after_commit(session, request.app.state.ingest)
    return await service.render(session, row)


@router.get("/vector_stores")
async def list_vector_stores(
    session: SessionDep, project: ProjectDep, page: PageDep
) -> ListResponse[VectorStoreObject]:
    """List vector stores."""
    rows, has_more = await service.list_page(session, project, page)
    rendered = {item.id: item for item in await service.render_many(session, rows)}
    return list_response(rows, has_more, lambda row: rendered[row.id])


@router.get("/vector_stores/{vector_store_id}")
async def get_vector_store(store: VectorStoreDep, session: SessionDep) -> VectorStoreObject:
    """Retrieve a vector store."""
    return await service.render(session, store)


@router.post("/vector_stores/{vector_store_id}")
async def modify_vector_store(
    store: VectorStoreDep, body: VectorStoreModify, session: SessionDep
) -> VectorStoreObject:
    """Modify a vector store."""
    return await service.render(session, await service.modify(session, store, body))


@router.delete("/vector_stores/{vector_store_id}")
async def delete_vector_store(store: VectorStoreDep, session: SessionDep) -> DeletedObject:
    """Delete a vector store (its files stay)."""
    await service.delete(session, store)
    return DeletedObject(id=store.id, object="vector_store.deleted")


@router.post("/vector_stores/{vector_store_id}/search")
async def search_vector_store(
    vector_store_id: str, body: SearchRequest, request: Request, project: ProjectDep
) -> SearchResultsPage:
    """Search a vector store for relevant chunks (hybrid: embeddings and full text)."""
    check_prefix(vector_store_id, Prefix.VECTOR_STORE, "vector_store_id")
    state = request.app.state
    return await search_store(
        state.read_sessions, state.write_sessions, state.retrieval, project, vector_store_id, body
    )


# --- files -------------------------------------------------------------------------------------


@router.post("/vector_stores/{vector_store_id}/files")
async def create_vector_store_file(
    store: VectorStoreDep, body: VectorStoreFileCreate, request: Request, session: SessionDep
) -> VectorStoreFileObject:
    """Attach a file to a vector store; it is ingested in the background."""
    row = await service.attach(
        session, store, body.file_id, body.chunking_strategy, body.attributes
    )
    wake_after_commit(session, request.app.state.ingest)
    return service.render_file(row)


@router.get("/vector_stores/{vector_store_id}/files")
async def list_vector_store_files(
    store: VectorStoreDep, session: SessionDep, page: PageDep, status: StatusFilter = None
) -> ListResponse[VectorStoreFileObject]:
    """List a vector store's files."""
    rows, has_more = await service.list_files(session, store, page, status)
    return list_response(rows, has_more, service.render_file)


@router.get("/vector_stores/{vector_store_id}/files/{file_id}")
async def get_vector_store_file(
    row: VectorStoreFileDep, response: Response, settings: SettingsDep
) -> VectorStoreFileObject:
    """Retrieve a vector store file."""
    _poll_hint(response, settings)
    return service.render_file(row)


@router.post("/vector_stores/{vector_store_id}/files/{file_id}")
async def update_vector_store_file(
    row: VectorStoreFileDep, body: VectorStoreFileModify, session: SessionDep
) -> VectorStoreFileObject:
    """Update a vector store file's attributes."""
    return service.render_file(await service.update_attributes(session, row, body.attributes))


@router.delete("/vector_stores/{vector_store_id}/files/{file_id}")
async def delete_vector_store_file(row: VectorStoreFileDep, session: SessionDep) -> DeletedObject:
    """Remove a file from a vector store (the file itself stays)."""
    await service.detach(session, row)
    return DeletedObject(id=row.file_id, object="vector_store.file.deleted")


@router.get("/vector_stores/{vector_store_id}/files/{file_id}/content")
async def get_vector_store_file_content(
    row: VectorStoreFileDep, session: SessionDep
) -> FileContentPage:
    """The parsed text of a vector store file."""
    text = await service.file_content(session, row)
    return FileContentPage(data=[FileContentPart(text=text)] if text else [])


# --- file batches ------------------------------------------------------------------------------


@router.post("/vector_stores/{vector_store_id}/file_batches")
async def create_file_batch(
    store: VectorStoreDep, body: FileBatchCreate, request: Request, session: SessionDep
) -> VectorStoreFileBatchObject:
    """Attach several files at once."""
    batch = await batches.create_batch(session, store, body)
    wake_after_commit(session, request.app.state.ingest)
    return await batches.render_batch(session, batch)


@router.get("/vector_stores/{vector_store_id}/file_batches/{batch_id}")
async def get_file_batch(
    batch: FileBatchDep, session: SessionDep, response: Response, settings: SettingsDep
) -> VectorStoreFileBatchObject:
    """Retrieve a file batch."""
    _poll_hint(response, settings)
    return await batches.render_batch(session, batch)


@router.post("/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel")
async def cancel_file_batch(batch: FileBatchDep, session: SessionDep) -> VectorStoreFileBatchObject:
    """Cancel a file batch: files not yet processed are cancelled."""
    await batches.cancel_batch(session, batch)
    return await batches.render_batch(session, batch)


@router.get("/vector_stores/{vector_store_id}/file_batches/{batch_id}/files")
async def list_file_batch_files(
    store: VectorStoreDep,
    batch: FileBatchDep,
    session: SessionDep,
    page: PageDep,
    status: StatusFilter = None,
) -> ListResponse[VectorStoreFileObject]:
    """List the files of a batch."""
    rows, has_more = await service.list_files(session, store, page, status, batch.id)
    return list_response(rows, has_more, service.render_file)

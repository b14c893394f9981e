"""HTTP routes for uploads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.deps import BlobsDep, ProjectDep, SessionDep, SettingsDep, UploadDep
from assistantd.kit.multipart import declared_length
from assistantd.uploads import service
from assistantd.uploads.schemas import (
    UploadComplete,
    UploadCreate,
    UploadObject,
    UploadPartObject,
)

router = APIRouter(tags=["uploads"])


async def _reader(request: Request) -> async_sessionmaker[AsyncSession]:
    """Short read-only transactions, for reads that must not wait on a long transfer."""
    reader: async_sessionmaker[AsyncSession] = request.app.state.read_sessions
    return reader


ReaderDep = Annotated[async_sessionmaker[AsyncSession], Depends(_reader)]

_PART_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["data"],
                    "additionalProperties": False,
                    "properties": {"data": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


@router.post("/uploads")
async def create_upload(
    body: UploadCreate, session: SessionDep, project: ProjectDep, settings: SettingsDep
) -> UploadObject:
    """Create an upload."""
    row = await service.create(
        session,
        project,
        body,
        max_total_bytes=settings.max_upload_total_bytes,
        expiry_seconds=settings.upload_expiry_seconds,
    )
    return service.render(row)


@router.post("/uploads/{upload_id}/parts", openapi_extra=_PART_BODY)
async def add_upload_part(
    upload: UploadDep,
    request: Request,
    session: SessionDep,
    blobs: BlobsDep,
    settings: SettingsDep,
) -> UploadPartObject:
    """Add a part to an upload."""
    part = await service.add_part(
        session,
        blobs,
        upload,
        request.stream(),
        request.headers.get("content-type"),
        declared_length=declared_length(request.headers),
        max_part_bytes=settings.max_upload_part_bytes,
        max_total_bytes=settings.max_upload_total_bytes,
    )
    return service.render_part(part)


@router.post("/uploads/{upload_id}/complete")
async def complete_upload(
    upload: UploadDep,
    body: UploadComplete,
    reader: ReaderDep,
    session: SessionDep,
    blobs: BlobsDep,
    background: BackgroundTasks,
) -> UploadObject:
    """Complete an upload: its parts become one file."""
    row, file, stale = await service.complete(reader, session, blobs, upload, body)
    for key in stale:  # after the response, so after the request's transaction committed
        background.add_task(blobs.delete, key)
    return service.render(row, file)


@router.post("/uploads/{upload_id}/cancel")
async def cancel_upload(
    upload: UploadDep, session: SessionDep, blobs: BlobsDep, background: BackgroundTasks
) -> UploadObject:
    """Cancel an upload."""
    row, stale = await service.cancel(session, upload)
    for key in stale:
        background.add_task(blobs.delete, key)
    return service.render(row)

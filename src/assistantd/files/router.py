"""HTTP routes for files."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import StreamingResponse

from assistantd.deps import BlobsDep, FileDep, ProjectDep, SessionDep, SettingsDep
from assistantd.errors import InvalidRequestError
from assistantd.files import service
from assistantd.files.schemas import FileObject
from assistantd.kit.multipart import declared_length
from assistantd.kit.pagination import Page, list_response
from assistantd.kit.schemas import DeletedObject, ListResponse, Order

router = APIRouter(tags=["files"])

MAX_LIST_LIMIT = 10_000


async def _files_page(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = MAX_LIST_LIMIT,
    order: Annotated[Order, Query()] = "desc",
    after: Annotated[str | None, Query()] = None,
) -> Page:
    """`GET /files` pages: up to 10,000 files a page, and no `before` cursor."""
    if "before" in request.query_params:
        # Ignoring it would silently return the wrong page.
        raise InvalidRequestError("Unrecognized request argument supplied: before", param="before")
    return Page(limit=limit, order=order, after=after)


FilesPageDep = Annotated[Page, Depends(_files_page)]

# The multipart body is read by hand (streamed), so describe it for the OpenAPI document.
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "purpose"],
                    "additionalProperties": False,
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "purpose": {
                            "type": "string",
                            "enum": list(service.FILE_PURPOSES),
                        },
                        "expires_after[anchor]": {"type": "string", "enum": ["created_at"]},
                        "expires_after[seconds]": {
                            "type": "integer",
                            "minimum": 3600,
                            "maximum": 2592000,
                        },
                    },
                    # Both or neither.
                    "dependentRequired": {
                        "expires_after[anchor]": ["expires_after[seconds]"],
                        "expires_after[seconds]": ["expires_after[anchor]"],
                    },
                }
            }
        },
    }
}


@router.post("/files", openapi_extra=_UPLOAD_BODY)
async def create_file(
    request: Request,
    session: SessionDep,
    project: ProjectDep,
    blobs: BlobsDep,
    settings: SettingsDep,
) -> FileObject:
    """Upload a file."""
    row = await service.create_from_form(
        session,
        project,
        blobs,
        request.stream(),
        request.headers.get("content-type"),
        declared_length=declared_length(request.headers),
        max_bytes=settings.max_upload_bytes,
    )
    return service.render(row)


@router.get("/files")
async def list_files(
    session: SessionDep,
    project: ProjectDep,
    page: FilesPageDep,
    purpose: Annotated[str | None, Query()] = None,
) -> ListResponse[FileObject]:
    """List files."""
    rows, has_more = await service.list_page(session, project, page, purpose)
    return list_response(rows, has_more, service.render)


@router.get("/files/{file_id}")
async def get_file(file: FileDep) -> FileObject:
    """Retrieve a file."""
    return service.render(file)


@router.delete("/files/{file_id}")
async def delete_file(
    file: FileDep, session: SessionDep, blobs: BlobsDep, background: BackgroundTasks
) -> DeletedObject:
    """Delete a file."""
    blob_key = await service.delete(session, file)
    # Background tasks run after the response, so after the request's transaction committed.
    background.add_task(blobs.delete, blob_key)
    return DeletedObject(id=file.id, object="file")


def _content_disposition(filename: str) -> str:
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get(
    "/files/{file_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def download_file(file: FileDep, blobs: BlobsDep) -> StreamingResponse:
    """Retrieve a file's content."""
    return StreamingResponse(
        await service.open_content(blobs, file),
        media_type=file.content_type,
        headers={
            "Content-Length": str(file.bytes),
            "Content-Disposition": _content_disposition(file.filename),
        },
    )

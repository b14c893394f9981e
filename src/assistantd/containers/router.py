"""HTTP routes for containers and container files."""

from __future__ import annotations

import posixpath
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import StreamingResponse

from assistantd.containers import files, service
from assistantd.containers.schemas import ContainerCreate, ContainerFileObject, ContainerObject
from assistantd.db.models import Container, ContainerFile, File
from assistantd.deps import (
    BlobsDep,
    PageDep,
    ProjectDep,
    SandboxesDep,
    SessionDep,
    SettingsDep,
)
from assistantd.files import service as files_service
from assistantd.files.router import _content_disposition as content_disposition
from assistantd.kit.ids import ID_MAX_LENGTH, Prefix, id_pattern
from assistantd.kit.multipart import declared_length
from assistantd.kit.pagination import list_response
from assistantd.kit.schemas import DeletedObject, ListResponse

router = APIRouter(tags=["containers"])


async def _live_container(container_id: str, session: SessionDep, project: ProjectDep) -> Container:
    """The path's container, running: its files are gone once it has expired."""
    return await service.require_live(session, project, container_id)


LiveContainerDep = Annotated[Container, Depends(_live_container)]


async def _container_file(
    file_id: str, container: LiveContainerDep, session: SessionDep
) -> tuple[ContainerFile, File]:
    return await files.require(session, container, file_id)


ContainerFileDep = Annotated[tuple[ContainerFile, File], Depends(_container_file)]

# The body is read by hand (JSON or a streamed multipart form), so describe it for OpenAPI.
_FILE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["file_id"],
                    "additionalProperties": False,
                    "properties": {
                        "file_id": {
                            "type": "string",
                            "pattern": id_pattern(Prefix.FILE),
                            "maxLength": ID_MAX_LENGTH,
                        }
                    },
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "additionalProperties": False,
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}


@router.post("/containers")
async def create_container(
    body: ContainerCreate, session: SessionDep, project: ProjectDep
) -> ContainerObject:
    """Create a container."""
    return service.render(await service.create(session, project, body))


@router.get("/containers")
async def list_containers(
    session: SessionDep,
    project: ProjectDep,
    page: PageDep,
    name: Annotated[str | None, Query()] = None,
) -> ListResponse[ContainerObject]:
    """List containers (optionally those with a given name)."""
    rows, has_more = await service.list_page(session, project, page, name)
    return list_response(rows, has_more, service.render)


@router.get("/containers/{container_id}")
async def get_container(
    container_id: str, session: SessionDep, project: ProjectDep
) -> ContainerObject:
    """Retrieve a container (`status` is `expired` once its time is up)."""
    return service.render(await service.require(session, project, container_id))


@router.delete("/containers/{container_id}")
async def delete_container(
    container_id: str,
    session: SessionDep,
    project: ProjectDep,
    blobs: BlobsDep,
    sandboxes: SandboxesDep,
    background: BackgroundTasks,
) -> DeletedObject:
    """Delete a container, its files and its sandbox."""
    row = await service.require(session, project, container_id)
    for key in await service.delete(session, row):
        background.add_task(blobs.delete, key)  # after the response, so after the commit
    if sandboxes is not None:
        await sandboxes.drop(project, row.id)
    return DeletedObject(id=row.id, object="container.deleted")


# --- files -------------------------------------------------------------------------------------


@router.post("/containers/{container_id}/files", openapi_extra=_FILE_BODY)
async def create_container_file(
    container_id: str,
    request: Request,
    session: SessionDep,
    project: ProjectDep,
    blobs: BlobsDep,
    settings: SettingsDep,
) -> ContainerFileObject:
    """Add a file to a container: a multipart upload (`file`), or JSON `{"file_id": ...}`."""
    content_type = request.headers.get("content-type")
    if files.is_multipart(content_type):
        row = await files.create_from_form(
            session,
            request.app.state.read_sessions,
            blobs,
            project,
            container_id,
            request.stream(),
            content_type,
            declared_length=declared_length(request.headers),
            max_bytes=settings.max_upload_bytes,
        )
    else:
        body = files.parse_body(await request.body())
        row = await files.create_from_file_id(session, project, container_id, body.file_id)
    return files.render(row)


@router.get("/containers/{container_id}/files")
async def list_container_files(
    container: LiveContainerDep, session: SessionDep, page: PageDep
) -> ListResponse[ContainerFileObject]:
    """List a container's files."""
    rows, has_more = await files.list_page(session, container, page)
    return list_response(rows, has_more, files.render)


@router.get("/containers/{container_id}/files/{file_id}")
async def get_container_file(found: ContainerFileDep) -> ContainerFileObject:
    """Retrieve a container file."""
    return files.render(found[0])


@router.delete("/containers/{container_id}/files/{file_id}")
async def delete_container_file(
    found: ContainerFileDep, session: SessionDep, blobs: BlobsDep, background: BackgroundTasks
) -> DeletedObject:
    """Delete a container file."""
    row, file = found
    key = await files.delete(session, row, file)
    if key is not None:
        background.add_task(blobs.delete, key)
    return DeletedObject(id=row.id, object="container.file.deleted")


@router.get(
    "/containers/{container_id}/files/{file_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def download_container_file(found: ContainerFileDep, blobs: BlobsDep) -> StreamingResponse:
    """Retrieve a container file's content."""
    row, file = found
    return StreamingResponse(
        await files_service.open_content(blobs, file),
        media_type=file.content_type,
        headers={
            "Content-Length": str(file.bytes),
            "Content-Disposition": content_disposition(posixpath.basename(row.path)),
        },
    )

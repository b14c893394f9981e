"""Container file use cases: add (an upload, or a file of the project by id), list, read,
delete. The files of an expired container are gone: every route answers OpenAI's 400.

An upload is streamed into the blob store before the request's transaction begins (on SQLite a
write transaction holds the database's write lock, which must not last a whole transfer); the
container is looked up first in a short read, then locked and re-checked to add the row.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Mapping, Sequence
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.blobs.store import BlobStore, BlobTooLarge, BlobWriter
from assistantd.containers import repository, service
from assistantd.containers.schemas import (
    ContainerFileCreate,
    ContainerFileObject,
    ContainerFileSource,
)
from assistantd.db.models import Container, ContainerFile, File
from assistantd.errors import APIError, InvalidRequestError, NotFoundError, validation_error
from assistantd.files import repository as files_repository
from assistantd.files import service as files
from assistantd.kit.ids import Prefix, check_prefix, created_at_of, new_id
from assistantd.kit.multipart import PartInfo, drain, read_form
from assistantd.kit.pagination import Page

UPLOAD_PURPOSE = "user_data"


def render(row: ContainerFile) -> ContainerFileObject:
    return ContainerFileObject(
        id=row.id,
        created_at=row.created_at,
        bytes=row.bytes,
        container_id=row.container_id,
        path=row.path,
        source=cast(ContainerFileSource, row.source),
    )


def not_found(file_id: str) -> NotFoundError:
    return NotFoundError(f"Container file with id '{file_id}' not found.")


async def require(
    session: AsyncSession, container: Container, file_id: str
) -> tuple[ContainerFile, File]:
    """A file of the container (which must be running), with the row holding its bytes."""
    check_prefix(file_id, Prefix.CONTAINER_FILE, "file_id")
    found = await repository.get_file(session, container.id, file_id)
    if found is None:
        raise not_found(file_id)
    return found


def is_multipart(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == "multipart/form-data"


def parse_body(raw: bytes) -> ContainerFileCreate:
    """The JSON form of the request, with OpenAI's errors."""
    try:
        return ContainerFileCreate.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise validation_error(errors, body) from exc


async def create_from_file_id(
    session: AsyncSession, project: str, container_id: str, file_id: str
) -> ContainerFile:
    """Copy a file of the project into the container as a user file."""
    check_prefix(file_id, Prefix.FILE, "file_id")
    container = await service.require_live(session, project, container_id, for_update=True)
    [row] = await service.add_by_ids(session, container, [file_id], param="file_id")
    await service.touch(session, container)
    return row


async def create_from_form(
    session: AsyncSession,
    reads: async_sessionmaker[AsyncSession],
    blobs: BlobStore,
    project: str,
    container_id: str,
    body: AsyncIterable[bytes],
    content_type: str | None,
    *,
    declared_length: int | None,
    max_bytes: int,
) -> ContainerFile:
    """`POST /containers/{id}/files` as a multipart form: a `file` part, or a `file_id` field."""
    try:
        async with reads() as db:
            await service.require_live(db, project, container_id)
    except APIError:
        await drain(aiter(body))
        raise
    await files.refuse_oversized(body, declared_length, max_bytes)
    writer: BlobWriter | None = None
    part: PartInfo | None = None

    async def open_file(info: PartInfo, _fields: Mapping[str, str]) -> BlobWriter:
        nonlocal writer, part
        if info.filename is None:
            raise InvalidRequestError(
                "Invalid 'file': expected a file upload (a form part with a filename).",
                param="file",
            )
        files.check_filename(info.filename, "file")
        part = info
        writer = await blobs.writer(blobs.new_key(), max_size=max_bytes)
        return writer

    try:
        try:
            fields = await read_form(body, content_type, file_fields={"file"}, open_file=open_file)
        except BlobTooLarge as exc:
            raise files.too_large(max_bytes) from exc
        for name in fields:
            if name != "file_id":
                raise InvalidRequestError(
                    f"Unrecognized request argument supplied: {name}", param=name
                )
        if writer is None or part is None or part.filename is None:
            if "file_id" in fields:
                return await create_from_file_id(session, project, container_id, fields["file_id"])
            raise InvalidRequestError("Missing required parameter: 'file'.", param="file")
        if "file_id" in fields:
            raise InvalidRequestError("Send either 'file' or 'file_id', not both.", param="file_id")
        await writer.commit()
    except BaseException:
        if writer is not None:
            await writer.abort()
        raise
    try:
        return await _add_upload(
            session, project, container_id, writer, part.filename, part.content_type
        )
    except BaseException:
        await blobs.delete(writer.key)
        raise


async def _add_upload(
    session: AsyncSession,
    project: str,
    container_id: str,
    writer: BlobWriter,
    filename: str,
    content_type: str | None,
) -> ContainerFile:
    container = await service.require_live(session, project, container_id, for_update=True)
    file_id = new_id(Prefix.FILE)
    file = File(
        id=file_id,
        project=project,
        created_at=created_at_of(file_id),
        bytes=writer.size,
        filename=filename,
        purpose=UPLOAD_PURPOSE,
        status="processed",
        status_details=None,
        expires_at=None,
        content_type=files.content_type_for(content_type, filename),
        blob_key=writer.key,
    )
    await files_repository.add(session, file)
    taken = await repository.paths(session, container.id)
    row = service.file_row(
        container, file, service.free_path(filename, file_id, taken), "user", owns_file=True
    )
    await repository.add(session, row)
    await service.touch(session, container)
    return row


async def list_page(
    session: AsyncSession, container: Container, page: Page
) -> tuple[Sequence[ContainerFile], bool]:
    return await repository.list_files(session, container.id, page)


async def delete(session: AsyncSession, row: ContainerFile, file: File) -> str | None:
    """Delete a container file, and its bytes when they were made for the container; returns
    the blob key to remove once the transaction has committed, if any."""
    if row.owns_file:
        return await files.delete(session, file)  # the container file goes by cascade
    await repository.delete(session, row)
    return None

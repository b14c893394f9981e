"""File use cases: streamed upload, lookup, listing, download, deletion, expiry.

An upload goes from the request body straight into a blob writer, so a file is never held in
memory; its row is written only once the whole form has been read and checked, and a refused or
broken upload leaves neither a row nor a blob. Deleting a file removes its row in the request's
transaction; the caller removes the blob once that has committed.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from typing import Any, cast, get_args

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.blobs.store import BlobStore, BlobTooLarge, BlobWriter
from assistantd.db.models import File
from assistantd.errors import (
    InvalidRequestError,
    PayloadTooLargeError,
    not_found,
    validation_error,
)
from assistantd.files import repository
from assistantd.files.schemas import (
    MAX_FILENAME,
    FileCreateForm,
    FileExpiresAfter,
    FileObject,
    FilePurpose,
    FileStatus,
)
from assistantd.kit.ids import Prefix, created_at_of, new_id
from assistantd.kit.multipart import (
    MAX_FIELD_BYTES,
    MAX_FIELDS,
    FileSink,
    PartInfo,
    drain,
    read_form,
    unflatten,
)
from assistantd.kit.pagination import Page
from assistantd.kit.timeutil import now
from assistantd.vector_stores import service as vector_stores

log = logging.getLogger(__name__)

FILE_PURPOSES: tuple[str, ...] = get_args(FilePurpose)
DEFAULT_CONTENT_TYPE = "application/octet-stream"
FORM_OVERHEAD = MAX_FIELDS * MAX_FIELD_BYTES + 1024 * 1024
BATCH_DEFAULT_EXPIRY = 30 * 24 * 3600
"""OpenAI: files with purpose `batch` expire after 30 days unless `expires_after` says otherwise."""


def render(row: File) -> FileObject:
    return FileObject(
        id=row.id,
        bytes=row.bytes,
        created_at=row.created_at,
        expires_at=row.expires_at,
        filename=row.filename,
        purpose=row.purpose,
        status=cast(FileStatus, row.status),
        status_details=row.status_details,
    )


async def require(session: AsyncSession, project: str, file_id: str) -> File:
    row = await repository.get(session, project, file_id)
    if row is None:
        raise not_found("file", file_id)
    return row


def content_type_for(declared: str | None, filename: str) -> str:
    """The part's own Content-Type, else a guess from the file name, else octet-stream."""
    if declared and declared.split(";")[0].strip().lower() != DEFAULT_CONTENT_TYPE:
        return declared
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


def expiry(created_at: int, purpose: str, expires_after: FileExpiresAfter | None) -> int | None:
    if expires_after is not None:
        return created_at + expires_after.seconds
    if purpose == "batch":
        return created_at + BATCH_DEFAULT_EXPIRY
    return None


def check_filename(filename: str, param: str) -> None:
    if not filename.strip():
        raise InvalidRequestError(f"Invalid '{param}': the file name is empty.", param=param)
    if len(filename) > MAX_FILENAME:
        raise InvalidRequestError(
            f"Invalid '{param}': the file name is longer than {MAX_FILENAME} characters.",
            param=param,
        )


def _form(fields: Mapping[str, str]) -> FileCreateForm:
    data: dict[str, Any] = unflatten(fields)
    try:
        # Form fields are all text: "3600" is the number 3600 here, unlike in a JSON body.
        return FileCreateForm.model_validate(data, strict=False)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from exc


def too_large(limit: int, what: str = "File") -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"{what} is too large: the maximum size is {limit} bytes.", code="file_too_large"
    )


async def refuse_oversized(
    body: AsyncIterable[bytes], declared: int | None, limit: int, what: str = "File"
) -> None:
    """413 before storing anything when the declared body cannot fit (the rest of the form is
    a few small fields, far below `FORM_OVERHEAD`)."""
    if declared is not None and declared > limit + FORM_OVERHEAD:
        await drain(aiter(body))
        raise too_large(limit, what)


async def create_from_form(
    session: AsyncSession,
    project: str,
    blobs: BlobStore,
    body: AsyncIterable[bytes],
    content_type: str | None,
    *,
    declared_length: int | None,
    max_bytes: int,
) -> File:
    """Read a `POST /files` form from `body`, streaming the file into the blob store."""
    await refuse_oversized(body, declared_length, max_bytes)
    writer: BlobWriter | None = None
    part: PartInfo | None = None

    async def open_file(info: PartInfo, fields: Mapping[str, str]) -> FileSink:
        nonlocal writer, part
        if info.filename is None:
            raise InvalidRequestError(
                "Invalid 'file': expected a file upload (a form part with a filename).",
                param="file",
            )
        check_filename(info.filename, "file")
        purpose = fields.get("purpose")
        if purpose is not None and purpose not in FILE_PURPOSES:
            _form({"purpose": purpose})  # refuse now, before storing anything
        part = info
        writer = await blobs.writer(blobs.new_key(), max_size=max_bytes)
        return writer

    try:
        try:
            fields = await read_form(body, content_type, file_fields={"file"}, open_file=open_file)
        except BlobTooLarge as exc:
            raise too_large(max_bytes) from exc
        form = _form(fields)
        if writer is None or part is None or part.filename is None:
            raise InvalidRequestError("Missing required parameter: 'file'.", param="file")
        await writer.commit()
    except BaseException:
        if writer is not None:
            await writer.abort()
        raise

    file_id = new_id(Prefix.FILE)
    created_at = created_at_of(file_id)
    row = File(
        id=file_id,
        project=project,
        created_at=created_at,
        bytes=writer.size,
        filename=part.filename,
        purpose=form.purpose,
        status="processed",
        status_details=None,
        expires_at=expiry(created_at, form.purpose, form.expires_after),
        content_type=content_type_for(part.content_type, part.filename),
        blob_key=writer.key,
    )
    try:
        return await repository.add(session, row)
    except BaseException:
        await blobs.delete(writer.key)
        raise


async def create_from_bytes(
    session: AsyncSession,
    blobs: BlobStore,
    project: str,
    *,
    filename: str,
    data: bytes,
    purpose: str,
) -> File:
    """A file the server made itself, e.g. a code interpreter output (`assistants_output`)."""
    key = blobs.new_key()
    await blobs.put(key, data)
    file_id = new_id(Prefix.FILE)
    row = File(
        id=file_id,
        project=project,
        created_at=created_at_of(file_id),
        bytes=len(data),
        filename=filename,
        purpose=purpose,
        status="processed",
        status_details=None,
        expires_at=None,
        content_type=content_type_for(None, filename),
        blob_key=key,
    )
    try:
        return await repository.add(session, row)
    except BaseException:
        await blobs.delete(key)
        raise


async def list_page(
    session: AsyncSession, project: str, page: Page, purpose: str | None
) -> tuple[Sequence[File], bool]:
    return await repository.list_page(session, project, page, purpose=purpose)


async def open_content(blobs: BlobStore, row: File) -> AsyncIterator[bytes]:
    """The file's bytes, with the blob already open (a 404 now rather than a broken stream)."""
    chunks = blobs.read(row.blob_key)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    except FileNotFoundError as exc:
        raise not_found("file", row.id) from exc

    async def stream() -> AsyncIterator[bytes]:
        try:
            if first:
                yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()

    return stream()


async def delete(session: AsyncSession, row: File) -> str:
    """Delete the row; returns the blob key to remove once the transaction has committed."""
    await vector_stores.detach_everywhere(session, row.id)
    await repository.delete(session, row)
    return row.blob_key


async def sweep_expired(
    sessions: async_sessionmaker[AsyncSession], blobs: BlobStore, *, limit: int = 500
) -> int:
    """Delete up to `limit` expired files (rows, then blobs); returns how many.

    Expired files are already invisible to the API (see the repository); this reclaims their
    storage. One unit of work: call it from a periodic maintenance task.
    """
    async with sessions() as session:
        rows = await repository.expired(session, now(), limit)
        keys = [row.blob_key for row in rows]
        for row in rows:
            await session.delete(row)
        await session.commit()
    for key in keys:
        try:
            await blobs.delete(key)
        except OSError:
            log.warning("could not delete blob %s of an expired file", key, exc_info=True)
    return len(keys)

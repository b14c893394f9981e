"""Uploads API use cases: a pending upload collects parts, then becomes one File.

Status runs `pending -> completed | cancelled | expired`; `expired` is read off the clock (a
pending upload past `expires_at`) and written down by `sweep_expired`, which also drops parts.

Parts are streamed to blobs and the parts of a completed upload are copied into one new blob
outside any write transaction; only then is the upload row re-read under lock, its status
checked again (another request may have cancelled or completed it meanwhile) and changed. A
blob whose row did not get written is deleted on the spot; the blobs of rows that were deleted
are returned to the caller to delete after commit.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterable, Mapping
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.blobs.store import BlobStore, BlobTooLarge, BlobWriter
from assistantd.db.models import File, Upload, UploadPart
from assistantd.errors import InvalidRequestError, not_found
from assistantd.files import repository as files_repository
from assistantd.files import service as files
from assistantd.files.schemas import FileExpiresAfter
from assistantd.kit.ids import Prefix, check_prefix, created_at_of, new_id
from assistantd.kit.multipart import FileSink, PartInfo, read_form
from assistantd.kit.timeutil import now
from assistantd.uploads import repository
from assistantd.uploads.schemas import (
    UploadComplete,
    UploadCreate,
    UploadObject,
    UploadPartObject,
    UploadStatus,
)

log = logging.getLogger(__name__)


def status_of(row: Upload, at: int | None = None) -> UploadStatus:
    if row.status == "pending" and (now() if at is None else at) >= row.expires_at:
        return "expired"
    return cast(UploadStatus, row.status)


def render(row: Upload, file: File | None = None) -> UploadObject:
    return UploadObject(
        id=row.id,
        bytes=row.bytes,
        created_at=row.created_at,
        filename=row.filename,
        purpose=row.purpose,
        status=status_of(row),
        expires_at=row.expires_at,
        file=files.render(file) if file is not None else None,
    )


def render_part(row: UploadPart) -> UploadPartObject:
    return UploadPartObject(id=row.id, created_at=row.created_at, upload_id=row.upload_id)


async def require(session: AsyncSession, project: str, upload_id: str) -> Upload:
    row = await repository.get(session, project, upload_id)
    if row is None:
        raise not_found("upload", upload_id)
    return row


def _check_pending(row: Upload, action: str) -> None:
    status = status_of(row)
    if status != "pending":
        raise InvalidRequestError(
            f"Upload '{row.id}' is {status}; only a pending upload can {action}."
        )


async def _locked(session: AsyncSession, snapshot: Upload, action: str) -> Upload:
    row = await repository.lock(session, snapshot.project, snapshot.id)
    if row is None:
        raise not_found("upload", snapshot.id)
    _check_pending(row, action)
    return row


async def create(
    session: AsyncSession,
    project: str,
    body: UploadCreate,
    *,
    max_total_bytes: int,
    expiry_seconds: int,
) -> Upload:
    if body.bytes > max_total_bytes:
        raise InvalidRequestError(
            f"Invalid 'bytes': an upload can be at most {max_total_bytes} bytes.",
            param="bytes",
        )
    upload_id = new_id(Prefix.UPLOAD)
    created_at = created_at_of(upload_id)
    row = Upload(
        id=upload_id,
        project=project,
        created_at=created_at,
        filename=body.filename,
        purpose=body.purpose,
        bytes=body.bytes,
        mime_type=body.mime_type,
        status="pending",
        expires_at=created_at + expiry_seconds,
        file_expires_after=(
            body.expires_after.model_dump() if body.expires_after is not None else None
        ),
        file_id=None,
    )
    await repository.add(session, row)
    return row


async def add_part(
    session: AsyncSession,
    blobs: BlobStore,
    upload: Upload,
    body: AsyncIterable[bytes],
    content_type: str | None,
    *,
    declared_length: int | None,
    max_part_bytes: int,
    max_total_bytes: int,
) -> UploadPart:
    """Stream the form's `data` field into a new part of `upload` (a snapshot, see deps)."""
    _check_pending(upload, "accept parts")
    await files.refuse_oversized(body, declared_length, max_part_bytes, "Part")
    writer: BlobWriter | None = None

    async def open_data(_: PartInfo, __: Mapping[str, str]) -> FileSink:
        nonlocal writer
        writer = await blobs.writer(blobs.new_key(), max_size=max_part_bytes)
        return writer

    try:
        try:
            fields = await read_form(body, content_type, file_fields={"data"}, open_file=open_data)
        except BlobTooLarge as exc:
            raise files.too_large(max_part_bytes, "Part") from exc
        if fields:
            name = next(iter(fields))
            raise InvalidRequestError(f"Unrecognized request argument supplied: {name}", param=name)
        if writer is None:
            raise InvalidRequestError("Missing required parameter: 'data'.", param="data")
        await writer.commit()
    except BaseException:
        if writer is not None:
            await writer.abort()
        raise

    try:
        row = await _locked(session, upload, "accept parts")
        received = await repository.bytes_received(session, row.id)
        if received + writer.size > max_total_bytes:
            raise files.too_large(max_total_bytes, "Upload")
        part_id = new_id(Prefix.PART)
        part = UploadPart(
            id=part_id,
            project=row.project,
            created_at=created_at_of(part_id),
            upload_id=row.id,
            bytes=writer.size,
            blob_key=writer.key,
        )
        await repository.add(session, part)
    except BaseException:
        await blobs.delete(writer.key)
        raise
    return part


async def _ordered_parts(
    reader: async_sessionmaker[AsyncSession], upload: Upload, part_ids: list[str]
) -> list[UploadPart]:
    seen: set[str] = set()
    for index, part_id in enumerate(part_ids):
        check_prefix(part_id, Prefix.PART, f"part_ids[{index}]")
        if part_id in seen:
            raise InvalidRequestError(
                f"Invalid 'part_ids[{index}]': part '{part_id}' is listed twice.",
                param=f"part_ids[{index}]",
            )
        seen.add(part_id)
    async with reader() as session:
        found = await repository.parts_by_id(session, upload.id, part_ids)
    for index, part_id in enumerate(part_ids):
        if part_id not in found:
            raise InvalidRequestError(
                f"Invalid 'part_ids[{index}]': no part '{part_id}' in upload '{upload.id}'.",
                param=f"part_ids[{index}]",
            )
    return [found[part_id] for part_id in part_ids]


async def complete(
    reader: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    blobs: BlobStore,
    upload: Upload,
    body: UploadComplete,
) -> tuple[Upload, File, list[str]]:
    """Join the parts, in the order given, into a File; returns the upload, the file and the
    blob keys of the parts, to delete after commit."""
    _check_pending(upload, "be completed")
    parts = await _ordered_parts(reader, upload, body.part_ids)
    total = sum(part.bytes for part in parts)
    if total != upload.bytes:
        raise InvalidRequestError(
            f"The parts hold {total} bytes, but the upload was created with bytes={upload.bytes}.",
            param="part_ids",
        )

    key = blobs.new_key()
    digest = hashlib.md5(usedforsecurity=False) if body.md5 is not None else None
    try:
        size = await blobs.concat(key, [part.blob_key for part in parts], digest=digest)
    except FileNotFoundError as exc:  # a concurrent cancel or complete removed the parts
        raise InvalidRequestError(
            f"Upload '{upload.id}' was cancelled or completed by another request."
        ) from exc
    try:
        if digest is not None and body.md5 is not None:
            if digest.hexdigest() != body.md5.strip().lower():
                raise InvalidRequestError(
                    f"The md5 of the uploaded bytes is {digest.hexdigest()}, not {body.md5}.",
                    param="md5",
                )
        row = await _locked(session, upload, "be completed")
        file_id = new_id(Prefix.FILE)
        created_at = created_at_of(file_id)
        expires_after = (
            FileExpiresAfter.model_validate(row.file_expires_after)
            if row.file_expires_after
            else None
        )
        file = File(
            id=file_id,
            project=row.project,
            created_at=created_at,
            bytes=size,
            filename=row.filename,
            purpose=row.purpose,
            status="processed",
            status_details=None,
            expires_at=files.expiry(created_at, row.purpose, expires_after),
            content_type=row.mime_type,
            blob_key=key,
        )
        await files_repository.add(session, file)
        row.status = "completed"
        row.file_id = file.id
        stale = await repository.delete_parts(session, row.id)
        await session.flush()
    except BaseException:
        await blobs.delete(key)
        raise
    return row, file, stale


async def cancel(session: AsyncSession, upload: Upload) -> tuple[Upload, list[str]]:
    """Cancel a pending upload; returns it and its parts' blob keys, to delete after commit."""
    _check_pending(upload, "be cancelled")
    row = await _locked(session, upload, "be cancelled")
    row.status = "cancelled"
    stale = await repository.delete_parts(session, row.id)
    await session.flush()
    return row, stale


async def sweep_expired(
    sessions: async_sessionmaker[AsyncSession], blobs: BlobStore, *, limit: int = 500
) -> int:
    """Mark up to `limit` lapsed pending uploads `expired` and drop their parts; returns how
    many. One unit of work: call it from a periodic maintenance task."""
    keys: list[str] = []
    async with sessions() as session:
        rows = await repository.stale_pending(session, now(), limit)
        for row in rows:
            row.status = "expired"
            keys += await repository.delete_parts(session, row.id)
        await session.commit()
    for key in keys:
        try:
            await blobs.delete(key)
        except OSError:
            log.warning("could not delete blob %s of an expired upload part", key, exc_info=True)
    return len(rows)

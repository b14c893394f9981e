"""Wire models for uploads."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from assistantd.files.schemas import MAX_FILENAME, FileExpiresAfter, FileObject
from assistantd.kit.schemas import INT64_MAX, RequestModel, WireModel

UploadPurpose = Literal["assistants", "batch", "fine-tune", "vision"]
UploadStatus = Literal["pending", "completed", "cancelled", "expired"]


class UploadCreate(RequestModel):
    filename: str = Field(min_length=1, max_length=MAX_FILENAME)
    purpose: UploadPurpose
    bytes: int = Field(ge=0, le=INT64_MAX)
    mime_type: str = Field(min_length=1, max_length=255)
    expires_after: FileExpiresAfter | None = None


class UploadComplete(RequestModel):
    part_ids: list[str]
    md5: str | None = None


class UploadObject(WireModel):
    id: str
    object: Literal["upload"] = "upload"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: UploadStatus
    expires_at: int
    file: FileObject | None


class UploadPartObject(WireModel):
    id: str
    object: Literal["upload.part"] = "upload.part"
    created_at: int
    upload_id: str

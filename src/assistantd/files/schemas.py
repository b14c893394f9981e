"""Wire models for files."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from assistantd.kit.schemas import RequestModel, WireModel

FilePurpose = Literal["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]
"""What `POST /files` accepts; stored files may also carry the `*_output` purposes."""

FileStatus = Literal["uploaded", "processed", "error"]

MIN_EXPIRY_SECONDS = 3600
MAX_EXPIRY_SECONDS = 2_592_000
MAX_FILENAME = 1024


class FileExpiresAfter(RequestModel):
    anchor: Literal["created_at"]
    seconds: int = Field(ge=MIN_EXPIRY_SECONDS, le=MAX_EXPIRY_SECONDS)


class FileCreateForm(RequestModel):
    """The text fields of `POST /files` (the `file` part itself is streamed, not modelled)."""

    purpose: FilePurpose
    expires_after: FileExpiresAfter | None = None


class FileObject(WireModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    expires_at: int | None
    filename: str
    purpose: str
    status: FileStatus
    status_details: str | None

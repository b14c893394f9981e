from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from assistantd.db.base import Base, IdType, JsonType, Owned


class File(Owned, Base):
    __tablename__ = "files"
    __table_args__ = (
        Index("ix_files_project_id", "project", "id"),
        Index("ix_files_project_purpose_id", "project", "purpose", "id"),
        Index("ix_files_blob_key", "blob_key"),  # the orphaned-blob sweep looks keys up
    )

    bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    filename: Mapped[str] = mapped_column(String(1024), nullable=False)
    purpose: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    status_details: Mapped[str | None] = mapped_column(String(1024))
    expires_at: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(255), nullable=False)
    blob_key: Mapped[str] = mapped_column(String(255), nullable=False)


class Upload(Owned, Base):
    """An Uploads API session: parts arrive, then `complete` turns them into a File."""

    __tablename__ = "uploads"

    filename: Mapped[str] = mapped_column(String(1024), nullable=False)
    purpose: Mapped[str] = mapped_column(String(32), nullable=False)
    bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    mime_type: Mapped[str] = mapped_column(String(255), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    expires_at: Mapped[int] = mapped_column(Integer, nullable=False)
    file_expires_after: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    file_id: Mapped[str | None] = mapped_column(IdType)


class UploadPart(Owned, Base):
    __tablename__ = "upload_parts"
    __table_args__ = (
        Index("ix_upload_parts_upload_id_id", "upload_id", "id"),
        Index("ix_upload_parts_blob_key", "blob_key"),
    )

    upload_id: Mapped[str] = mapped_column(
        IdType, ForeignKey("uploads.id", ondelete="CASCADE"), nullable=False
    )
    bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    blob_key: Mapped[str] = mapped_column(String(255), nullable=False)

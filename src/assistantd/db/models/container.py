"""Containers (named code interpreter sandboxes, Responses API) and the files in them.

A container file's bytes live in a `files` row. `owns_file` says whether that row was made for
the container (an upload, or a file the code wrote), and so goes with it, or is a file of the
project's that was copied in by id (`file_ids`, `{"file_id": ...}`), which stays.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from assistantd.db.base import Base, IdType, JsonType, Owned


class Container(Owned, Base):
    __tablename__ = "containers"
    __table_args__ = (
        Index("ix_containers_project_id", "project", "id"),
        Index("ix_containers_status_expires_at", "status", "expires_at"),
        Index("ix_containers_project_owner_id", "project", "owner_id"),
    )

    name: Mapped[str] = mapped_column(String(256), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # running | expired
    last_active_at: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_after: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False)
    # last_active_at + expires_after.minutes, kept in step so the sweep is one indexed query.
    expires_at: Mapped[int] = mapped_column(Integer, nullable=False)
    memory_limit: Mapped[str] = mapped_column(String(8), nullable=False)  # 1g | 4g | 16g | 64g
    # An auto container's owner: the conversation, or the response that started its chain,
    # whose deletion deletes it. None for a named one (Containers API).
    owner_id: Mapped[str | None] = mapped_column(IdType, nullable=True)


class ContainerFile(Owned, Base):
    __tablename__ = "container_files"
    __table_args__ = (
        Index("ix_container_files_container_id_id", "container_id", "id"),
        Index("ix_container_files_container_id_path", "container_id", "path", unique=True),
        Index("ix_container_files_file_id", "file_id"),
    )

    container_id: Mapped[str] = mapped_column(
        IdType, ForeignKey("containers.id", ondelete="CASCADE"), nullable=False
    )
    file_id: Mapped[str] = mapped_column(
        IdType, ForeignKey("files.id", ondelete="CASCADE"), nullable=False
    )
    path: Mapped[str] = mapped_column(String(1024), nullable=False)  # /mnt/data/...
    source: Mapped[str] = mapped_column(String(16), nullable=False)  # user | assistant
    bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    owns_file: Mapped[bool] = mapped_column(Boolean, nullable=False)

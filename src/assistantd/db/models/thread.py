from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from assistantd.db.base import Base, IdType, JsonType, Owned


class Thread(Owned, Base):
    __tablename__ = "threads"

    tool_resources: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    metadata_: Mapped[dict[str, str] | None] = mapped_column("metadata", JsonType)


class Message(Owned, Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_thread_id_id", "thread_id", "id"),
        Index("ix_messages_thread_id_run_id", "thread_id", "run_id"),
    )

    thread_id: Mapped[str] = mapped_column(
        IdType, ForeignKey("threads.id", ondelete="CASCADE"), nullable=False
    )
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    # The wire's content array, stored as is.
    content: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    incomplete_details: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    completed_at: Mapped[int | None] = mapped_column(Integer)
    incomplete_at: Mapped[int | None] = mapped_column(Integer)
    assistant_id: Mapped[str | None] = mapped_column(IdType)
    run_id: Mapped[str | None] = mapped_column(IdType)
    attachments: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonType)
    metadata_: Mapped[dict[str, str] | None] = mapped_column("metadata", JsonType)

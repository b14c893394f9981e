from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from assistantd.db.base import Base, JsonType, Owned


class Assistant(Owned, Base):
    __tablename__ = "assistants"
    __table_args__ = (Index("ix_assistants_project_id", "project", "id"),)

    name: Mapped[str | None] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(String(512))
    model: Mapped[str] = mapped_column(String(256), nullable=False)
    instructions: Mapped[str | None] = mapped_column(Text)
    tools: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, nullable=False)
    tool_resources: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    metadata_: Mapped[dict[str, str] | None] = mapped_column("metadata", JsonType)
    temperature: Mapped[float | None] = mapped_column(Float)
    top_p: Mapped[float | None] = mapped_column(Float)
    response_format: Mapped[Any] = mapped_column(JsonType, nullable=True)
    reasoning_effort: Mapped[str | None] = mapped_column(String(16))

"""A project's event stream open on an API process, counted across processes on PostgreSQL
(see `streams`; UNLOGGED there, made by migration 0008)."""

from __future__ import annotations

from sqlalchemy import Float, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from assistantd.db.base import Base


class OpenStream(Base):
    __tablename__ = "open_streams"
    __table_args__ = (
        Index("ix_open_streams_project_beat_at", "project", "beat_at"),
        Index("ix_open_streams_holder", "holder"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project: Mapped[str] = mapped_column(String(128), nullable=False)
    # The API process that holds it (`streams.shared.SharedStreamSlots.holder`).
    holder: Mapped[str] = mapped_column(String(64), nullable=False)
    # When its holder last renewed it: Unix seconds, by the database's clock.
    beat_at: Mapped[float] = mapped_column(Float, nullable=False)

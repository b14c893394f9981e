"""This installation's own id: a random one made at first start (one row)."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from assistantd.db.base import Base


class Installation(Base):
    __tablename__ = "installation"

    key: Mapped[str] = mapped_column(String(16), primary_key=True)  # always "id"
    id: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)

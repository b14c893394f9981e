"""Declarative base and the column types every table shares."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Integer, MetaData, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

# Ids sort by creation time (see kit.ids); PostgreSQL must compare them bytewise, not by locale.
IdType: TypeEngine[str] = String(64).with_variant(String(64, collation="C"), "postgresql")
JsonType: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Owned:
    """Columns of every API object: its id, its tenant, its creation time."""

    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    project: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)

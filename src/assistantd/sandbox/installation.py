"""This installation's id: made at random on first use and kept in the database, so every
process of one installation (API replicas, workers, restarts) shares it. Sandbox containers
carry it as a label; an installation removes only containers that carry its own."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.db.models import Installation
from assistantd.kit.timeutil import now

KEY = "id"


async def installation_id(sessions: async_sessionmaker[AsyncSession]) -> str:
    """The stored id, or a new one stored now (the first of racing processes wins)."""
    async with sessions() as session:
        found = await session.scalar(select(Installation.id).where(Installation.key == KEY))
        if found is not None:
            return found
        session.add(Installation(key=KEY, id=secrets.token_hex(16), created_at=now()))
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
    async with sessions() as session:
        stored = await session.scalar(select(Installation.id).where(Installation.key == KEY))
        assert stored is not None
        return stored

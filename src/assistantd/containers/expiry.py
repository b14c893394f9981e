"""The sweep that carries out container expiry: marks containers whose time is up `expired`,
discards their files and removes their sandboxes. Runs on the worker's reaper beat; reads
already treat such containers as expired, so nothing waits for it."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.blobs.store import BlobStore
from assistantd.containers import repository, service
from assistantd.kit.timeutil import now
from assistantd.sandbox.tool import CodeInterpreterTool
from assistantd.tools.base import ToolRegistry

log = logging.getLogger(__name__)


async def sweep_expired(
    sessions: async_sessionmaker[AsyncSession],
    blobs: BlobStore,
    tools: ToolRegistry,
    *,
    limit: int = 100,
) -> int:
    """Expire up to `limit` containers whose time is up; returns how many. One unit of work."""
    async with sessions() as session:
        rows = await repository.expiring(session, now(), limit)
        keys = []
        for row in rows:
            keys.extend(await service.expire(session, row))
        await session.commit()
    sandboxes = CodeInterpreterTool.sandboxes_of(tools)
    for row in rows:
        if sandboxes is not None:
            await sandboxes.drop(row.project, row.id)
    for key in keys:
        try:
            await blobs.delete(key)
        except OSError:
            log.warning("could not delete blob %s of an expired container", key, exc_info=True)
    return len(rows)

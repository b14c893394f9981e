"""The sweep of orphaned blobs: stored bytes that no row refers to.

Blobs are written before the row that refers to them commits, and deleted after the row's
deletion commits; a process that dies in either gap leaves a blob behind. The sweep lists the
store's keys older than a grace age (younger ones may still be getting their row) and deletes
those no file or upload part refers to, then drops writes that were begun and never finished
(the local store's temporary files, S3's incomplete multipart uploads). Idempotent: any number
of workers may run it at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.blobs.store import BlobStore
from assistantd.files import repository

log = logging.getLogger(__name__)

ABANDONED_WRITE_SECONDS = 24 * 3600
"""A write begun this long ago and still not committed is given up for dead."""


@dataclass
class SweepResult:
    orphans: int = 0
    abandoned: int = 0


async def sweep_orphans(
    sessions: async_sessionmaker[AsyncSession],
    blobs: BlobStore,
    *,
    grace_seconds: float,
    abandoned_seconds: float = ABANDONED_WRITE_SECONDS,
) -> SweepResult:
    result = SweepResult()
    started = time.time()
    async for page in blobs.stale_keys(older_than=started - grace_seconds):
        async with sessions() as session:
            referenced = await repository.referenced_blob_keys(session, page)
        for key in page:
            if key in referenced:
                continue
            try:
                await blobs.delete(key)
                result.orphans += 1
            except OSError:
                log.warning("could not delete orphaned blob %s", key, exc_info=True)
    result.abandoned = await blobs.drop_abandoned(older_than=started - abandoned_seconds)
    if result.orphans or result.abandoned:
        log.info(
            "blob sweep: deleted %d orphaned blobs and %d abandoned writes",
            result.orphans,
            result.abandoned,
        )
    return result

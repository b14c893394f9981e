"""Auto containers go with what they were made for: deleting a conversation, a response or a
thread deletes the containers it owns, their files and their sandboxes (at once: a sandbox
holds memory on the host until then)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.blobs.store import BlobStore
from assistantd.containers import service
from assistantd.sandbox.manager import SandboxManager


async def delete_owned(
    session: AsyncSession,
    project: str,
    owner_id: str,
    *,
    blobs: BlobStore,
    sandboxes: SandboxManager | None,
    after_commit: Callable[..., Any],
) -> None:
    """Delete `owner_id`'s containers; their blobs go through `after_commit(blobs.delete, key)`
    (e.g. a router's `BackgroundTasks.add_task`, which runs after the commit)."""
    deleted = await service.delete_owned(session, project, owner_id)
    for key in deleted.blob_keys:
        after_commit(blobs.delete, key)
    if sandboxes is not None:
        for container_id in deleted.container_ids:
            await sandboxes.drop(project, container_id)

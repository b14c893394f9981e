"""HTTP routes for threads (there is no list endpoint, as upstream)."""

from __future__ import annotations

from fastapi import APIRouter

from assistantd.deps import ProjectDep, SandboxesDep, SessionDep, ThreadDep
from assistantd.kit.schemas import DeletedObject
from assistantd.threads import service
from assistantd.threads.schemas import ThreadCreate, ThreadModify, ThreadObject

router = APIRouter(tags=["threads"])


@router.post("/threads")
async def create_thread(
    session: SessionDep, project: ProjectDep, body: ThreadCreate | None = None
) -> ThreadObject:
    """Create a thread; the body is optional."""
    return service.render(await service.create_thread(session, project, body))


@router.get("/threads/{thread_id}")
async def get_thread(thread: ThreadDep) -> ThreadObject:
    """Retrieve a thread."""
    return service.render(thread)


@router.post("/threads/{thread_id}")
async def modify_thread(thread: ThreadDep, body: ThreadModify, session: SessionDep) -> ThreadObject:
    """Modify a thread."""
    return service.render(await service.modify(session, thread, body))


@router.delete("/threads/{thread_id}")
async def delete_thread(
    thread: ThreadDep, session: SessionDep, sandboxes: SandboxesDep
) -> DeletedObject:
    """Delete a thread and its messages; its code interpreter sandbox goes at once."""
    await service.delete(session, thread)
    if sandboxes is not None:
        await sandboxes.drop(thread.project, thread.id)
    return DeletedObject(id=thread.id, object="thread.deleted")

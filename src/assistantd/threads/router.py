"""HTTP routes for threads (there is no list endpoint, as upstream)."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks

from assistantd.containers.owned import delete_owned
from assistantd.deps import BlobsDep, ProjectDep, SandboxesDep, SessionDep, ThreadDep
from assistantd.kit.schemas import DeletedObject
from assistantd.threads import service
from assistantd.threads.schemas import ThreadCreate, ThreadModify, ThreadObject

router = APIRouter(tags=["threads"])

# No body at all is an empty thread; a JSON `null` is no object and answers 400.
_NO_BODY = ThreadCreate()


@router.post("/threads")
async def create_thread(
    session: SessionDep, project: ProjectDep, body: ThreadCreate = _NO_BODY
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
    thread: ThreadDep,
    session: SessionDep,
    sandboxes: SandboxesDep,
    blobs: BlobsDep,
    background: BackgroundTasks,
) -> DeletedObject:
    """Delete a thread and its messages; its code interpreter sandbox (and the auto containers
    of responses in it, a conversation being a thread) go at once."""
    await service.delete(session, thread)
    await delete_owned(
        session,
        thread.project,
        thread.id,
        blobs=blobs,
        sandboxes=sandboxes,
        after_commit=background.add_task,
    )
    if sandboxes is not None:
        await sandboxes.drop(thread.project, thread.id)
    return DeletedObject(id=thread.id, object="thread.deleted")

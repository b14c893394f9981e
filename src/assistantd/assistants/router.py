"""HTTP routes for assistants."""

from __future__ import annotations

from fastapi import APIRouter

from assistantd.assistants import service
from assistantd.assistants.schemas import AssistantCreate, AssistantModify, AssistantObject
from assistantd.deps import AssistantDep, PageDep, ProjectDep, SessionDep
from assistantd.kit.pagination import list_response
from assistantd.kit.schemas import DeletedObject, ListResponse

router = APIRouter(tags=["assistants"])


@router.post("/assistants")
async def create_assistant(
    body: AssistantCreate, session: SessionDep, project: ProjectDep
) -> AssistantObject:
    """Create an assistant."""
    return service.render(await service.create(session, project, body))


@router.get("/assistants")
async def list_assistants(
    session: SessionDep, project: ProjectDep, page: PageDep
) -> ListResponse[AssistantObject]:
    """List assistants."""
    rows, has_more = await service.list_page(session, project, page)
    return list_response(rows, has_more, service.render)


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant: AssistantDep) -> AssistantObject:
    """Retrieve an assistant."""
    return service.render(assistant)


@router.post("/assistants/{assistant_id}")
async def modify_assistant(
    assistant: AssistantDep, body: AssistantModify, session: SessionDep
) -> AssistantObject:
    """Modify an assistant."""
    return service.render(await service.modify(session, assistant, body))


@router.delete("/assistants/{assistant_id}")
async def delete_assistant(assistant: AssistantDep, session: SessionDep) -> DeletedObject:
    """Delete an assistant."""
    await service.delete(session, assistant)
    return DeletedObject(id=assistant.id, object="assistant.deleted")

"""Assistant use cases."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.assistants import repository
from assistantd.assistants.schemas import AssistantCreate, AssistantModify, AssistantObject
from assistantd.db.models import Assistant
from assistantd.errors import not_found
from assistantd.kit.ids import Prefix, created_at_of, new_id
from assistantd.kit.pagination import Page
from assistantd.tools import resources
from assistantd.tools.schemas import dump_response_format, dump_tools


def render(row: Assistant) -> AssistantObject:
    return AssistantObject(
        id=row.id,
        created_at=row.created_at,
        name=row.name,
        description=row.description,
        model=row.model,
        instructions=row.instructions,
        tools=row.tools,
        tool_resources=row.tool_resources,
        metadata=row.metadata_,
        temperature=row.temperature,
        top_p=row.top_p,
        response_format=row.response_format,
    )


async def require(session: AsyncSession, project: str, assistant_id: str) -> Assistant:
    row = await repository.get(session, project, assistant_id)
    if row is None:
        raise not_found("assistant", assistant_id)
    return row


async def create(session: AsyncSession, project: str, body: AssistantCreate) -> Assistant:
    tool_resources = await resources.resolve(session, project, body.tool_resources)
    assistant_id = new_id(Prefix.ASSISTANT)
    row = Assistant(
        id=assistant_id,
        project=project,
        created_at=created_at_of(assistant_id),
        name=body.name,
        description=body.description,
        model=body.model,
        instructions=body.instructions,
        tools=dump_tools(body.tools),
        tool_resources=tool_resources if tool_resources is not None else {},
        metadata_=body.metadata or {},
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        response_format=dump_response_format(body.response_format) or "auto",
        reasoning_effort=body.reasoning_effort,
    )
    return await repository.add(session, row)


async def modify(session: AsyncSession, row: Assistant, body: AssistantModify) -> Assistant:
    given = body.model_fields_set
    if "model" in given and body.model is not None:
        row.model = body.model
    for field in ("name", "description", "instructions", "reasoning_effort"):
        if field in given:
            setattr(row, field, getattr(body, field))
    if "tools" in given:
        row.tools = dump_tools(body.tools or [])
    if "tool_resources" in given:
        given_resources = body.tool_resources.as_resources() if body.tool_resources else None
        resolved = await resources.resolve(session, row.project, given_resources)
        row.tool_resources = {**(row.tool_resources or {}), **(resolved or {})}
    if "metadata" in given:
        row.metadata_ = body.metadata or {}
    if "temperature" in given:
        row.temperature = 1.0 if body.temperature is None else body.temperature
    if "top_p" in given:
        row.top_p = 1.0 if body.top_p is None else body.top_p
    if "response_format" in given:
        row.response_format = dump_response_format(body.response_format) or "auto"
    await session.flush()
    return row


async def list_page(
    session: AsyncSession, project: str, page: Page
) -> tuple[Sequence[Assistant], bool]:
    return await repository.list_page(session, project, page)


async def delete(session: AsyncSession, row: Assistant) -> None:
    await repository.delete(session, row)

"""Validate `tool_resources` against the project's objects and store them in wire shape."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.errors import InvalidRequestError
from assistantd.files import repository as files
from assistantd.kit.ids import Prefix
from assistantd.tools.schemas import ToolResources


async def check_file_ids(
    session: AsyncSession, project: str, file_ids: list[str], param: str
) -> None:
    for index, file_id in enumerate(file_ids):
        if not file_id.startswith(Prefix.FILE):
            raise InvalidRequestError(
                f"Invalid '{param}[{index}]': '{file_id}'. Expected an ID that begins with 'file'.",
                param=f"{param}[{index}]",
            )
    missing = await files.missing_ids(session, project, file_ids)
    if missing:
        raise InvalidRequestError(
            f"No file found with id '{missing[0]}'.", param=param, code="invalid_file_id"
        )


async def resolve(
    session: AsyncSession,
    project: str,
    resources: ToolResources | None,
    *,
    param: str = "tool_resources",
) -> dict[str, Any] | None:
    """The stored form of `resources`, after checking every id it names."""
    if resources is None:
        return None
    stored: dict[str, Any] = {}
    if resources.code_interpreter is not None:
        file_ids = list(dict.fromkeys(resources.code_interpreter.file_ids))
        await check_file_ids(session, project, file_ids, f"{param}.code_interpreter.file_ids")
        stored["code_interpreter"] = {"file_ids": file_ids}
    if resources.file_search is not None:
        if resources.file_search.vector_stores:
            raise InvalidRequestError(
                "Creating vector stores inline with 'vector_stores' needs vector store support, "
                "which this server does not have yet; create the vector store first and pass "
                "its id in 'vector_store_ids'.",
                param=f"{param}.file_search.vector_stores",
            )
        ids = resources.file_search.vector_store_ids or []
        for index, vs_id in enumerate(ids):
            if not vs_id.startswith(Prefix.VECTOR_STORE):
                raise InvalidRequestError(
                    f"Invalid '{param}.file_search.vector_store_ids[{index}]': '{vs_id}'. "
                    "Expected an ID that begins with 'vs'.",
                    param=f"{param}.file_search.vector_store_ids[{index}]",
                )
        stored["file_search"] = {"vector_store_ids": ids}
    return stored

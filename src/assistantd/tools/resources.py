"""Validate `tool_resources` against the project's objects and store them in wire shape."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.errors import InvalidRequestError
from assistantd.files import repository as files
from assistantd.kit.ids import Prefix
from assistantd.tools.schemas import FileSearchResources, ToolResources
from assistantd.vector_stores import service as vector_stores
from assistantd.vector_stores.schemas import VectorStoreCreate


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
        stored["file_search"] = {
            "vector_store_ids": await _vector_store_ids(
                session, project, resources.file_search, f"{param}.file_search"
            )
        }
    return stored


async def _vector_store_ids(
    session: AsyncSession, project: str, file_search: FileSearchResources, param: str
) -> list[str]:
    """The named stores (which must exist), or the one the `vector_stores` helper creates."""
    if file_search.vector_stores:
        helper = file_search.vector_stores[0]
        # The helper allows more files than `POST /vector_stores`; it was validated already.
        body = VectorStoreCreate.model_construct(
            file_ids=helper.file_ids,
            name=None,
            description=None,
            expires_after=None,
            chunking_strategy=helper.chunking_strategy,
            metadata=helper.metadata,
        )
        store = await vector_stores.create(
            session, project, body, param=f"{param}.vector_stores[0]."
        )
        return [store.id]
    ids = list(dict.fromkeys(file_search.vector_store_ids or []))
    await vector_stores.check_store_ids(session, project, ids, f"{param}.vector_store_ids")
    return ids

"""Wire models for threads."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from assistantd.kit.schemas import (
    MAX_THREAD_MESSAGES,
    Metadata,
    NotNull,
    RequestModel,
    VectorStoreId,
    WireModel,
)
from assistantd.messages.schemas import MessageCreate
from assistantd.tools.schemas import CodeInterpreterResources, ToolResources


class ThreadCreate(RequestModel):
    messages: list[MessageCreate] = Field(default_factory=list, max_length=MAX_THREAD_MESSAGES)
    tool_resources: ToolResources | None = None
    metadata: Metadata = None


class FileSearchResourcesModify(RequestModel):
    """Modify takes only ids: the inline `vector_stores` helper exists on create alone."""

    vector_store_ids: list[VectorStoreId] | None = Field(None, max_length=1)


class ToolResourcesModify(RequestModel):
    code_interpreter: Annotated[CodeInterpreterResources | None, NotNull] = None
    file_search: Annotated[FileSearchResourcesModify | None, NotNull] = None

    def as_resources(self) -> ToolResources:
        return ToolResources.model_validate(self.model_dump(exclude_unset=True))


class ThreadModify(RequestModel):
    tool_resources: ToolResourcesModify | None = None
    metadata: Metadata = None


class ThreadObject(WireModel):
    id: str
    object: Literal["thread"] = "thread"
    created_at: int
    tool_resources: dict[str, Any] | None
    metadata: dict[str, str] | None

"""Wire models for assistants."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from assistantd.kit.schemas import (
    MAX_TEXT,
    MAX_TOOLS,
    Metadata,
    NotNull,
    RequestModel,
    VectorStoreId,
    WireModel,
)
from assistantd.tools.schemas import (
    CodeInterpreterResources,
    ReasoningEffort,
    ResponseFormat,
    Tool,
    ToolResources,
)


class AssistantCreate(RequestModel):
    model: str = Field(min_length=1, max_length=256)
    name: str | None = Field(None, max_length=256)
    description: str | None = Field(None, max_length=512)
    instructions: str | None = Field(None, max_length=MAX_TEXT)
    reasoning_effort: ReasoningEffort | None = None
    tools: list[Tool] = Field(default_factory=list, max_length=MAX_TOOLS)
    tool_resources: ToolResources | None = None
    metadata: Metadata = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    response_format: ResponseFormat | None = None


class FileSearchResourcesModify(RequestModel):
    """Modify takes only ids: the inline `vector_stores` helper exists on create alone."""

    vector_store_ids: list[VectorStoreId] | None = Field(None, max_length=1)


class ToolResourcesModify(RequestModel):
    code_interpreter: Annotated[CodeInterpreterResources | None, NotNull] = None
    file_search: Annotated[FileSearchResourcesModify | None, NotNull] = None

    def as_resources(self) -> ToolResources:
        return ToolResources.model_validate(self.model_dump(exclude_unset=True))


class AssistantModify(RequestModel):
    model: str | None = Field(None, min_length=1, max_length=256)
    reasoning_effort: ReasoningEffort | None = None
    name: str | None = Field(None, max_length=256)
    description: str | None = Field(None, max_length=512)
    instructions: str | None = Field(None, max_length=MAX_TEXT)
    tools: list[Tool] | None = Field(None, max_length=MAX_TOOLS)
    tool_resources: ToolResourcesModify | None = None
    metadata: Metadata = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    response_format: ResponseFormat | None = None


class AssistantObject(WireModel):
    id: str
    object: Literal["assistant"] = "assistant"
    created_at: int
    name: str | None
    description: str | None
    model: str
    instructions: str | None
    tools: list[dict[str, Any]]
    tool_resources: dict[str, Any] | None
    metadata: dict[str, str] | None
    temperature: float | None
    top_p: float | None
    response_format: Any

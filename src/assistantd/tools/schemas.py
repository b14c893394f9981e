"""Tool definitions, tool resources and response formats, shared by assistants, threads, runs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from assistantd.kit.schemas import FileId, Metadata, NotNull, RequestModel, VectorStoreId


class _Strict(RequestModel):
    pass


class RankingOptions(_Strict):
    ranker: Literal["auto", "default_2024_08_21"] = "auto"
    score_threshold: float = Field(ge=0, le=1)


class FileSearchSettings(_Strict):
    max_num_results: int | None = Field(None, ge=1, le=50)
    ranking_options: RankingOptions | None = None


class FunctionDefinition(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = False


class CodeInterpreterTool(_Strict):
    type: Literal["code_interpreter"]


class FileSearchTool(_Strict):
    type: Literal["file_search"]
    file_search: Annotated[FileSearchSettings | None, NotNull] = None


class FunctionTool(_Strict):
    type: Literal["function"]
    function: FunctionDefinition


Tool = Annotated[CodeInterpreterTool | FileSearchTool | FunctionTool, Field(discriminator="type")]


def dump_tools(tools: list[Tool]) -> list[dict[str, Any]]:
    """As stored and returned: a file_search tool with no settings is `{"type": "file_search"}`."""
    dumped = (tool.model_dump() for tool in tools)
    return [{k: v for k, v in tool.items() if v is not None} for tool in dumped]


# --- tool resources --------------------------------------------------------------------------


class ChunkingStrategyAuto(_Strict):
    type: Literal["auto"]


class StaticChunking(_Strict):
    max_chunk_size_tokens: int = Field(800, ge=100, le=4096)
    chunk_overlap_tokens: int = Field(400, ge=0, le=2048)

    @model_validator(mode="after")
    def _overlap(self) -> StaticChunking:
        if self.chunk_overlap_tokens > self.max_chunk_size_tokens // 2:
            raise ValueError("chunk_overlap_tokens must not exceed half of max_chunk_size_tokens")
        return self


class ChunkingStrategyStatic(_Strict):
    type: Literal["static"]
    static: StaticChunking


ChunkingStrategy = Annotated[
    ChunkingStrategyAuto | ChunkingStrategyStatic, Field(discriminator="type")
]


class VectorStoreHelper(_Strict):
    """`tool_resources.file_search.vector_stores[]`: create a store inline."""

    file_ids: list[FileId] = Field(default_factory=list, max_length=10000)
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata = None


class CodeInterpreterResources(_Strict):
    file_ids: list[FileId] = Field(default_factory=list, max_length=20)


class FileSearchResources(_Strict):
    vector_store_ids: list[VectorStoreId] | None = Field(None, max_length=1)
    vector_stores: list[VectorStoreHelper] | None = Field(None, max_length=1)

    @model_validator(mode="after")
    def _one_of(self) -> FileSearchResources:
        if self.vector_store_ids and self.vector_stores:
            raise ValueError("vector_store_ids and vector_stores are mutually exclusive")
        return self


class ToolResources(_Strict):
    code_interpreter: Annotated[CodeInterpreterResources | None, NotNull] = None
    file_search: Annotated[FileSearchResources | None, NotNull] = None


# --- response format ---------------------------------------------------------------------------


class ResponseFormatText(_Strict):
    type: Literal["text"]


class ResponseFormatJsonObject(_Strict):
    type: Literal["json_object"]


class JsonSchemaFormat(_Strict):
    name: str = Field(max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = False

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ResponseFormatJsonSchema(_Strict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = (
    Literal["auto"]
    | Annotated[
        ResponseFormatText | ResponseFormatJsonObject | ResponseFormatJsonSchema,
        Field(discriminator="type"),
    ]
)


def dump_response_format(value: ResponseFormat | None) -> Any:
    if value is None or isinstance(value, str):
        return value
    return value.model_dump(by_alias=True, exclude_none=True)


ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]

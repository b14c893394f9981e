"""Wire models for vector stores, their files, file batches and search."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from assistantd.kit.schemas import (
    MAX_METADATA_KEY,
    MAX_METADATA_PAIRS,
    MAX_METADATA_VALUE,
    FileId,
    Metadata,
    RequestModel,
    WireModel,
)
from assistantd.tools.schemas import ChunkingStrategy

AttributeValue = str | bool | float


def _check_attributes(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if len(value) > MAX_METADATA_PAIRS:
        raise ValueError(
            f"too many properties. Expected an object with at most {MAX_METADATA_PAIRS} "
            f"properties, but got an object with {len(value)} properties instead."
        )
    for key, item in value.items():
        if len(key) > MAX_METADATA_KEY:
            raise ValueError(f"attribute key '{key[:20]}...' is too long: at most 64 characters.")
        if isinstance(item, str) and len(item) > MAX_METADATA_VALUE:
            raise ValueError(f"attribute value for '{key}' is too long: at most 512 characters.")
    return value


Attributes = Annotated[dict[str, AttributeValue] | None, AfterValidator(_check_attributes)]


class ExpiresAfter(RequestModel):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


class VectorStoreCreate(RequestModel):
    file_ids: list[FileId] = Field(default_factory=list, max_length=500)
    name: str | None = Field(None, max_length=512)
    description: str | None = Field(None, max_length=512)
    expires_after: ExpiresAfter | None = None
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata = None


class VectorStoreModify(RequestModel):
    name: str | None = Field(None, max_length=512)
    expires_after: ExpiresAfter | None = None
    metadata: Metadata = None


class FileCounts(WireModel):
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0


class VectorStoreObject(WireModel):
    id: str
    object: Literal["vector_store"] = "vector_store"
    created_at: int
    name: str
    description: str | None
    usage_bytes: int
    file_counts: FileCounts
    status: Literal["expired", "in_progress", "completed"]
    expires_after: dict[str, Any] | None
    expires_at: int | None
    last_active_at: int | None
    metadata: dict[str, str] | None


class VectorStoreFileCreate(RequestModel):
    file_id: FileId
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes = None


class VectorStoreFileModify(RequestModel):
    attributes: Attributes


class FileBatchEntry(RequestModel):
    file_id: FileId
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes = None


class FileBatchCreate(RequestModel):
    file_ids: list[FileId] | None = Field(None, min_length=1, max_length=2000)
    files: list[FileBatchEntry] | None = Field(None, min_length=1, max_length=2000)
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes = None

    @model_validator(mode="after")
    def _one_of(self) -> FileBatchCreate:
        if (self.file_ids is None) == (self.files is None):
            raise ValueError("Provide exactly one of 'file_ids' or 'files'.")
        return self


class VectorStoreFileObject(WireModel):
    id: str
    object: Literal["vector_store.file"] = "vector_store.file"
    usage_bytes: int
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "cancelled", "failed"]
    last_error: dict[str, Any] | None
    chunking_strategy: dict[str, Any]
    attributes: dict[str, Any] | None


class VectorStoreFileBatchObject(WireModel):
    id: str
    object: Literal["vector_store.files_batch"] = "vector_store.files_batch"
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "cancelled", "failed"]
    file_counts: FileCounts


class FileContentPart(WireModel):
    type: Literal["text"] = "text"
    text: str


class FileContentPage(WireModel):
    object: Literal["vector_store.file_content.page"] = "vector_store.file_content.page"
    data: list[FileContentPart]
    has_more: bool = False
    next_page: str | None = None


# --- search ------------------------------------------------------------------------------------


class ComparisonFilter(RequestModel):
    key: str
    type: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"]
    value: str | bool | float | list[str | float]


class CompoundFilter(RequestModel):
    type: Literal["and", "or"]
    filters: list[ComparisonFilter | CompoundFilter]


class SearchRankingOptions(RequestModel):
    ranker: Literal["none", "auto", "default-2024-11-15"] = "auto"
    score_threshold: float = Field(0.0, ge=0, le=1)


class SearchRequest(RequestModel):
    query: str | list[str]
    rewrite_query: bool = False
    max_num_results: int = Field(10, ge=1, le=50)
    filters: ComparisonFilter | CompoundFilter | None = None
    ranking_options: SearchRankingOptions | None = None

    @model_validator(mode="after")
    def _some_query(self) -> SearchRequest:
        queries = [self.query] if isinstance(self.query, str) else self.query
        if not queries or not any(q.strip() for q in queries):
            raise ValueError("'query' must not be empty.")
        return self


class SearchResultContent(WireModel):
    type: Literal["text"] = "text"
    text: str


class SearchResult(WireModel):
    file_id: str
    filename: str
    score: float
    attributes: dict[str, Any] | None
    content: list[SearchResultContent]


class SearchResultsPage(WireModel):
    object: Literal["vector_store.search_results.page"] = "vector_store.search_results.page"
    search_query: list[str]
    data: list[SearchResult]
    has_more: bool = False
    next_page: str | None = None

"""Wire models of the Responses API: the create request, its tools, and the response object.

Fields follow the order of OpenAI's API reference (`CreateResponse`, `Response`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    model_validator,
)

from assistantd.items.schemas import InputItem
from assistantd.kit.schemas import (
    MAX_INPUT_ITEMS,
    MAX_TOOLS,
    FileId,
    Metadata,
    RequestModel,
    Text,
    VectorStoreId,
    WireModel,
)
from assistantd.tools.client_params import (
    ApplyPatchToolParam,
    CustomToolParam,
    FunctionToolParam,
    LocalShellToolParam,
    NamespaceToolParam,
    ShellToolParam,
    ToolSearchToolParam,
)
from assistantd.tools.schemas import ReasoningEffort
from assistantd.tools.web_search_params import (
    WEB_SEARCH_PREVIEW_TYPES,
    WEB_SEARCH_TYPES,
    WebSearchPreviewToolParam,
    WebSearchToolParam,
)
from assistantd.vector_stores.schemas import ComparisonFilter, CompoundFilter

Include = Literal[
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
]


class HybridSearch(RequestModel):
    embedding_weight: float = Field(ge=0)
    text_weight: float = Field(ge=0)

    @model_validator(mode="after")
    def _some_weight(self) -> HybridSearch:
        if self.embedding_weight + self.text_weight <= 0:
            raise ValueError("at least one of embedding_weight and text_weight must be above 0.")
        return self


class FileSearchRanking(RequestModel):
    ranker: Literal["auto", "default-2024-11-15"] = "auto"
    score_threshold: float = Field(0.0, ge=0, le=1)
    hybrid_search: HybridSearch | None = None


class FileSearchToolParam(RequestModel):
    type: Literal["file_search"]
    vector_store_ids: list[VectorStoreId] = Field(max_length=16)
    max_num_results: int | None = Field(None, ge=1, le=50)
    ranking_options: FileSearchRanking | None = None
    filters: ComparisonFilter | CompoundFilter | None = None


ContainerMemoryLimit = Literal["1g", "4g", "16g", "64g"]


class AutoContainerParam(RequestModel):
    type: Literal["auto"]
    file_ids: list[FileId] | None = Field(None, max_length=50)
    memory_limit: ContainerMemoryLimit | None = None


class CodeInterpreterToolParam(RequestModel):
    type: Literal["code_interpreter"]
    container: str | AutoContainerParam


class ToolParam(BaseModel):
    """A tool of another type; `responses.create` tells which this server runs."""

    model_config = ConfigDict(extra="allow")
    type: str


_KNOWN_TOOLS = frozenset(
    {
        "function",
        "file_search",
        "code_interpreter",
        "custom",
        "namespace",
        "local_shell",
        "shell",
        "apply_patch",
        "tool_search",
    }
)


def _tool_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(kind, str):  # a `type` that is an object or a list names no tool
        return "other"
    if kind in WEB_SEARCH_TYPES:
        return "web_search"
    if kind in WEB_SEARCH_PREVIEW_TYPES:
        return "web_search_preview"
    return kind if kind in _KNOWN_TOOLS else "other"


Tool = Annotated[
    Annotated[FunctionToolParam, Tag("function")]
    | Annotated[FileSearchToolParam, Tag("file_search")]
    | Annotated[CodeInterpreterToolParam, Tag("code_interpreter")]
    | Annotated[CustomToolParam, Tag("custom")]
    | Annotated[NamespaceToolParam, Tag("namespace")]
    | Annotated[LocalShellToolParam, Tag("local_shell")]
    | Annotated[ShellToolParam, Tag("shell")]
    | Annotated[ApplyPatchToolParam, Tag("apply_patch")]
    | Annotated[ToolSearchToolParam, Tag("tool_search")]
    | Annotated[WebSearchToolParam, Tag("web_search")]
    | Annotated[WebSearchPreviewToolParam, Tag("web_search_preview")]
    | Annotated[ToolParam, Tag("other")],
    Discriminator(_tool_kind),
]


class ToolChoiceFunction(RequestModel):
    type: Literal["function"]
    name: str


class ToolChoiceHosted(RequestModel):
    type: Literal[
        "file_search",
        "code_interpreter",
        "web_search",  # the Agents SDK's
        "web_search_2025_08_26",
        "web_search_preview",
        "web_search_preview_2025_03_11",
    ]


class ToolChoiceCustom(RequestModel):
    type: Literal["custom"]
    name: str


class ToolChoiceClient(RequestModel):
    """Forces `apply_patch` or `shell` (`SpecificApplyPatchParam`, `SpecificFunctionShellParam`)."""

    type: Literal["apply_patch", "shell"]


class ToolChoiceMcp(RequestModel):
    """Forces a call of a tool of one MCP server (`name`: that tool; without: any of it)."""

    type: Literal["mcp"]
    server_label: str
    name: str | None = None


class AllowedTool(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    name: str | None = None


class ToolChoiceAllowed(RequestModel):
    type: Literal["allowed_tools"]
    mode: Literal["auto", "required"]
    tools: list[AllowedTool] = Field(min_length=1)


ToolChoice = (
    Literal["none", "auto", "required"]
    | Annotated[
        ToolChoiceFunction
        | ToolChoiceHosted
        | ToolChoiceAllowed
        | ToolChoiceCustom
        | ToolChoiceClient
        | ToolChoiceMcp,
        Field(discriminator="type"),
    ]
)


class TextFormatText(RequestModel):
    type: Literal["text"]


class TextFormatJsonObject(RequestModel):
    type: Literal["json_object"]


class TextFormatJsonSchema(RequestModel):
    type: Literal["json_schema"]
    name: str = Field(max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = False

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


TextFormat = Annotated[
    TextFormatText | TextFormatJsonObject | TextFormatJsonSchema, Field(discriminator="type")
]


class TextParam(RequestModel):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningParam(RequestModel):
    effort: ReasoningEffort | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None
    mode: str | None = None
    context: Literal["auto", "current_turn", "all_turns"] | None = None


class ConversationRef(RequestModel):
    id: str


class StreamOptions(RequestModel):
    include_obfuscation: bool | None = None


InputItems = Annotated[list[InputItem], Field(max_length=MAX_INPUT_ITEMS)]


class PromptParam(RequestModel):
    id: str
    version: str | None = None
    variables: dict[str, Any] | None = None


class ContextManagementParam(RequestModel):
    type: Literal["compaction"]
    compact_threshold: int | None = Field(None, ge=1000, le=2_147_483_647)


ServiceTier = Literal["auto", "default", "flex", "scale", "priority", "fast", "ultrafast"]


class AccessProgramsParam(RequestModel):
    cyber: Literal["standard", "daybreak_blue", "daybreak_red"] | None = None


class BackgroundOptionsParam(RequestModel):
    completion_window: Literal["soonest", "2h", "8h"] | None = None
    continuation_id: str | None = Field(None, max_length=512)


class ImageOptionsParam(RequestModel):
    context_compression: Literal["auto", "enabled", "disabled"] | None = None


class ModerationPolicyPart(RequestModel):
    mode: Literal["score", "block"]


class ModerationPolicyParam(RequestModel):
    input: ModerationPolicyPart | None = None
    output: ModerationPolicyPart | None = None


class ModerationParam(RequestModel):
    model: str
    policy: ModerationPolicyParam | None = None


class PromptCacheOptionsParam(RequestModel):
    comparison_response_id: str | None = None
    mode: Literal["implicit", "explicit"] | None = None
    prewarm: bool | None = None
    ttl: Literal["30m", "12h"] | None = None


MAX_CLIENT_METADATA_PAIRS = 64
MAX_CLIENT_METADATA_KEY = 256
MAX_CLIENT_METADATA_VALUE = 16_384


def _check_client_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if len(value) > MAX_CLIENT_METADATA_PAIRS:
        raise ValueError(f"at most {MAX_CLIENT_METADATA_PAIRS} entries are kept.")
    for key, item in value.items():
        if len(key) > MAX_CLIENT_METADATA_KEY:
            raise ValueError(f"keys are at most {MAX_CLIENT_METADATA_KEY} characters.")
        if len(item) > MAX_CLIENT_METADATA_VALUE:
            raise ValueError(f"values are at most {MAX_CLIENT_METADATA_VALUE} characters.")
    return value


ClientMetadata = Annotated[dict[str, str] | None, AfterValidator(_check_client_metadata)]
"""What a client says about itself (Codex: its session, turn and window ids); ours to keep."""

Penalty = Annotated[float | None, Field(ge=-2, le=2)]


class CreateResponse(RequestModel):
    model: str | None = None
    input: Annotated[str, StringConstraints(max_length=10_485_760)] | InputItems | None = None
    instructions: Text | None = None
    previous_response_id: str | None = None
    conversation: str | ConversationRef | None = None
    include: list[Include] | None = None
    tools: list[Tool] | None = Field(None, max_length=MAX_TOOLS)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tool_calls: int | None = Field(None, ge=1, le=2_147_483_647)
    max_output_tokens: int | None = Field(None, ge=16, le=2_147_483_647)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    top_logprobs: int | None = Field(None, ge=0, le=20)
    text: TextParam | None = None
    reasoning: ReasoningParam | None = None
    truncation: Literal["auto", "disabled"] | None = None
    metadata: Metadata = None
    store: bool | None = None
    background: bool | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    prompt: PromptParam | None = None
    user: str | None = Field(None, max_length=256)
    safety_identifier: str | None = Field(None, max_length=128)  # the SDK's bound (spec: 64)
    prompt_cache_key: str | None = Field(None, max_length=1024)
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    prompt_cache_options: PromptCacheOptionsParam | None = None
    service_tier: ServiceTier | None = None
    access_programs: AccessProgramsParam | None = None
    background_options: BackgroundOptionsParam | None = None
    image: ImageOptionsParam | None = None
    moderation: ModerationParam | None = None
    # The Open Responses specification's (OpenAI's Response object shows them too).
    presence_penalty: Penalty = None
    frequency_penalty: Penalty = None
    # Ours to keep, not OpenAI's: Codex CLI sends it with every request.
    client_metadata: ClientMetadata = None
    context_management: list[ContextManagementParam] | None = Field(None, max_length=1)

    @model_validator(mode="after")
    def _stream_options_need_stream(self) -> CreateResponse:
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options may only be set when stream is true.")
        return self


class InputTokensRequest(RequestModel):
    model: str | None = None
    input: Annotated[str, StringConstraints(max_length=10_485_760)] | InputItems | None = None
    instructions: Text | None = None
    previous_response_id: str | None = None
    conversation: str | ConversationRef | None = None
    tools: list[Tool] | None = Field(None, max_length=MAX_TOOLS)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextParam | None = None
    reasoning: ReasoningParam | None = None
    truncation: Literal["auto", "disabled"] | None = None
    personality: str | None = Field(None, max_length=64)


def _absent(value: Any) -> bool:
    return value is None


class CompactTool(BaseModel):
    """A tool of the agent whose context is compacted (what Codex sends along): the summary
    pass calls none, it is told their names."""

    model_config = ConfigDict(extra="allow")
    type: str
    name: str | None = None
    description: str | None = None


class ImageOptions(RequestModel):
    context_compression: Literal["auto", "enabled", "disabled"] | None = None


class PromptCacheOptions(RequestModel):
    mode: Literal["implicit", "explicit"] | None = None
    ttl: Literal["30m"] | None = None


class CompactRequest(RequestModel):
    """`POST /responses/compact`: the spec's fields, and those Codex sends with them (`tools`,
    `parallel_tool_calls`, `reasoning`, `text`)."""

    model: str | None
    input: Annotated[str, StringConstraints(max_length=10_485_760)] | InputItems | None = None
    previous_response_id: str | None = None
    instructions: Text | None = None
    tools: list[CompactTool] | None = Field(None, max_length=MAX_TOOLS)
    parallel_tool_calls: bool | None = None
    reasoning: ReasoningParam | None = None
    text: TextParam | None = None
    image: ImageOptions | None = None
    prompt_cache_key: str | None = Field(None, max_length=1024)
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    prompt_cache_options: PromptCacheOptions | None = None
    safety_identifier: str | None = Field(None, max_length=64)
    service_tier: Literal["auto", "default", "fast", "flex", "scale", "priority"] | None = None
    client_metadata: dict[str, Any] | None = None  # Codex's; nothing of it is kept


class CompactedResponseObject(WireModel):
    id: str
    object: Literal["response.compaction"] = "response.compaction"
    created_at: int
    output: list[dict[str, Any]]
    usage: dict[str, Any]
    safety_identifier: str | None = None
    service_tier: str | None = None


class ResponseObject(WireModel):
    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: str
    completed_at: int | None
    access_programs: dict[str, str] | None = Field(None, exclude_if=_absent)
    background: bool
    conversation: dict[str, str] | None
    error: dict[str, Any] | None
    frequency_penalty: float
    image: dict[str, str] | None = Field(None, exclude_if=_absent)
    incomplete_details: dict[str, Any] | None
    instructions: str | None
    max_output_tokens: int | None
    max_tool_calls: int | None
    model: str
    output: list[dict[str, Any]]
    parallel_tool_calls: bool
    presence_penalty: float
    previous_response_id: str | None
    prompt_cache_diagnostics: dict[str, Any] | None = Field(None, exclude_if=_absent)
    prompt_cache_key: str | None
    prompt_cache_options: dict[str, str] | None = Field(None, exclude_if=_absent)
    prompt_cache_retention: str | None
    reasoning: dict[str, Any]
    safety_identifier: str | None
    service_tier: str
    store: bool
    temperature: float
    text: dict[str, Any]
    tool_choice: Any
    tools: list[dict[str, Any]]
    top_logprobs: int
    top_p: float
    truncation: str
    usage: dict[str, Any] | None
    user: str | None
    metadata: dict[str, str]


class InputTokensObject(WireModel):
    object: Literal["response.input_tokens"] = "response.input_tokens"
    input_tokens: int

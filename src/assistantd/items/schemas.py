"""Items as clients send them (Responses `input`, conversation items), validated.

An item without `type` is a message when it has a `role`, else an `item_reference`; the other
kinds name their type. Items a server emitted may come back as input (the OpenAI Agents SDK
replays every output item with the keys it was sent), so each kind accepts its output fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, StringConstraints, Tag, model_validator

from assistantd.items.client_schemas import (
    AdditionalToolsItem,
    ApplyPatchCallItem,
    ApplyPatchCallOutputItem,
    CustomToolCallItem,
    LocalShellCallItem,
    LocalShellCallOutputItem,
    ShellCallItem,
    ShellCallOutputItem,
    ToolSearchCallItem,
    ToolSearchOutputItem,
)
from assistantd.kit.schemas import MAX_CONTENT_PARTS, RequestModel
from assistantd.mcp.items import (
    McpApprovalRequestItem,
    McpApprovalResponseItem,
    McpCallItem,
    McpListToolsItem,
)

ImageDetail = Literal["low", "high", "auto", "original"]
ItemStatus = Literal["in_progress", "completed", "incomplete"]
ItemId = Annotated[str, Field(min_length=1, max_length=64)]


class PromptCacheBreakpoint(RequestModel):
    """Where a reusable prompt prefix ends. Accepted, with no Chat Completions form to pass it
    on in: the backends this server talks to cache prefixes on their own (vLLM's and llama.cpp's
    prefix caches, OpenAI's automatic caching)."""

    mode: Literal["explicit"]
    ttl: Literal["30m", "12h"] | None = None


class InputText(RequestModel):
    type: Literal["input_text"]
    text: str
    prompt_cache_breakpoint: PromptCacheBreakpoint | None = None


class InputImage(RequestModel):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: ImageDetail | None = "auto"
    prompt_cache_breakpoint: PromptCacheBreakpoint | None = None

    @model_validator(mode="after")
    def _one_source(self) -> InputImage:
        if (self.image_url is None) == (self.file_id is None):
            raise ValueError("an input_image needs exactly one of 'image_url' and 'file_id'.")
        return self


class InputFile(RequestModel):
    type: Literal["input_file"]
    file_id: str | None = None
    filename: str | None = None
    file_data: str | None = Field(None, max_length=73_400_320)
    file_url: str | None = None
    detail: Literal["low", "high", "auto"] | None = None
    prompt_cache_breakpoint: PromptCacheBreakpoint | None = None

    @model_validator(mode="after")
    def _one_source(self) -> InputFile:
        given = [name for name in ("file_id", "file_data", "file_url") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(
                "an input_file needs exactly one of 'file_id', 'file_data' and 'file_url'."
            )
        if self.file_url is not None:
            raise ValueError(
                "'file_url' is not supported by this server (it fetches no URLs); upload the "
                "file and pass its 'file_id', or send its bytes as 'file_data'."
            )
        if self.file_data is not None and not self.filename:
            raise ValueError("an input_file with 'file_data' needs its 'filename'.")
        return self


class OutputText(RequestModel):
    type: Literal["output_text"]
    text: str
    annotations: list[dict[str, Any]] = Field(default_factory=list)
    logprobs: list[dict[str, Any]] | None = None


class Refusal(RequestModel):
    type: Literal["refusal"]
    refusal: str


InputContent = Annotated[InputText | InputImage | InputFile, Field(discriminator="type")]
MessageContent = Annotated[
    InputText | InputImage | InputFile | OutputText | Refusal, Field(discriminator="type")
]

ToolOutputParts = Annotated[list[InputContent], Field(max_length=MAX_CONTENT_PARTS)]

_USER_PARTS = frozenset({"input_text", "input_image", "input_file"})
_ASSISTANT_PARTS = frozenset({"output_text", "refusal"})


class MessageItem(RequestModel):
    type: Literal["message"] | None = None
    id: ItemId | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: str | Annotated[list[MessageContent], Field(max_length=MAX_CONTENT_PARTS)]
    status: ItemStatus | None = None
    phase: Literal["commentary", "final_answer"] | None = None

    @model_validator(mode="after")
    def _parts_fit_the_role(self) -> MessageItem:
        if isinstance(self.content, str):
            return self
        allowed = _ASSISTANT_PARTS if self.role == "assistant" else _USER_PARTS
        for part in self.content:
            if part.type not in allowed:
                expected = ", ".join(f"'{p}'" for p in sorted(allowed))
                raise ValueError(
                    f"Invalid value: '{part.type}'. Supported values for a {self.role} "
                    f"message are: {expected}."
                )
        return self


class FunctionCallItem(RequestModel):
    type: Literal["function_call"]
    id: ItemId | None = None
    call_id: ItemId
    name: str = Field(min_length=1, max_length=128)
    arguments: str
    status: ItemStatus | None = None
    namespace: str | None = None


class FunctionCallOutputItem(RequestModel):
    type: Literal["function_call_output"]
    id: ItemId | None = None
    call_id: ItemId
    output: Annotated[str, StringConstraints(max_length=10_485_760)] | ToolOutputParts
    status: ItemStatus | None = None


class CustomToolCallOutputItem(RequestModel):
    type: Literal["custom_tool_call_output"]
    id: ItemId | None = None
    call_id: ItemId
    output: Annotated[str, StringConstraints(max_length=10_485_760)] | ToolOutputParts
    status: ItemStatus | None = None
    caller: dict[str, Any] | None = None


class ItemReference(RequestModel):
    type: Literal["item_reference"] | None = None
    id: ItemId


class ReasoningItem(RequestModel):
    type: Literal["reasoning"]
    id: ItemId | None = None
    summary: list[dict[str, Any]]
    content: list[dict[str, Any]] | None = None
    encrypted_content: str | None = None
    status: ItemStatus | None = None


class CodeInterpreterCallItem(RequestModel):
    type: Literal["code_interpreter_call"]
    id: ItemId
    container_id: str | None = None
    code: str | None = None
    outputs: list[dict[str, Any]] | None = None
    status: Literal["in_progress", "completed", "incomplete", "interpreting", "failed"]


class FileSearchCallItem(RequestModel):
    type: Literal["file_search_call"]
    id: ItemId
    queries: list[str]
    results: list[dict[str, Any]] | None = None
    status: Literal["in_progress", "searching", "completed", "incomplete", "failed"]


class WebSearchCallItem(RequestModel):
    type: Literal["web_search_call"]
    id: ItemId
    action: dict[str, Any]
    status: Literal["in_progress", "searching", "completed", "incomplete", "failed"]


class CompactionItem(RequestModel):
    """A compaction item a client carries back (from `/responses/compact` or an automatic
    compaction): its summary, sealed by this server."""

    type: Literal["compaction"]
    id: ItemId | None = None
    encrypted_content: str = Field(min_length=1, max_length=20_971_520)
    created_by: str | None = None


class CompactionTriggerItem(RequestModel):
    """A request control, not an item: compact the context now (the last input item only)."""

    type: Literal["compaction_trigger"]
    id: ItemId | None = None


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("type")
        if kind is None:
            return "message" if "role" in value else "item_reference"
        return kind if isinstance(kind, str) else None
    return getattr(value, "type", None) or "message"


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[ItemReference, Tag("item_reference")]
    | Annotated[ReasoningItem, Tag("reasoning")]
    | Annotated[CodeInterpreterCallItem, Tag("code_interpreter_call")]
    | Annotated[FileSearchCallItem, Tag("file_search_call")]
    | Annotated[WebSearchCallItem, Tag("web_search_call")]
    | Annotated[CompactionItem, Tag("compaction")]
    | Annotated[CompactionTriggerItem, Tag("compaction_trigger")]
    | Annotated[CustomToolCallOutputItem, Tag("custom_tool_call_output")]
    | Annotated[CustomToolCallItem, Tag("custom_tool_call")]
    | Annotated[LocalShellCallItem, Tag("local_shell_call")]
    | Annotated[LocalShellCallOutputItem, Tag("local_shell_call_output")]
    | Annotated[ShellCallItem, Tag("shell_call")]
    | Annotated[ShellCallOutputItem, Tag("shell_call_output")]
    | Annotated[ApplyPatchCallItem, Tag("apply_patch_call")]
    | Annotated[ApplyPatchCallOutputItem, Tag("apply_patch_call_output")]
    | Annotated[ToolSearchCallItem, Tag("tool_search_call")]
    | Annotated[ToolSearchOutputItem, Tag("tool_search_output")]
    | Annotated[AdditionalToolsItem, Tag("additional_tools")]
    | Annotated[McpListToolsItem, Tag("mcp_list_tools")]
    | Annotated[McpCallItem, Tag("mcp_call")]
    | Annotated[McpApprovalRequestItem, Tag("mcp_approval_request")]
    | Annotated[McpApprovalResponseItem, Tag("mcp_approval_response")],
    Discriminator(_kind),
]

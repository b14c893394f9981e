"""Wire models for runs and run steps."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from assistantd.kit.schemas import (
    INT32_MAX,
    MAX_THREAD_MESSAGES,
    MAX_TOOLS,
    AssistantId,
    Metadata,
    RequestModel,
    Text,
    WireModel,
)
from assistantd.messages.schemas import MessageCreate
from assistantd.threads.schemas import ThreadCreate
from assistantd.tools.schemas import ReasoningEffort, ResponseFormat, Tool, ToolResources

FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"
MAX_TOOL_OUTPUT = 10_485_760  # as a Responses function_call_output's
Include = Literal["step_details.tool_calls[*].file_search.results[*].content"]


class _Strict(RequestModel):
    pass


class TruncationStrategy(_Strict):
    type: Literal["auto", "last_messages"]
    last_messages: int | None = Field(None, ge=1, le=INT32_MAX)

    @model_validator(mode="after")
    def _needs_count(self) -> TruncationStrategy:
        if self.type == "last_messages" and self.last_messages is None:
            raise ValueError("last_messages is required when type is 'last_messages'")
        return self


class NamedFunction(_Strict):
    name: str


class ToolChoiceFunction(_Strict):
    type: Literal["function"]
    function: NamedFunction


class ToolChoiceBuiltin(_Strict):
    type: Literal["code_interpreter", "file_search"]


ToolChoice = Literal["none", "auto", "required"] | ToolChoiceFunction | ToolChoiceBuiltin


class _RunOptions(RequestModel):
    """Fields common to create-run and create-thread-and-run."""

    assistant_id: AssistantId
    model: str | None = Field(None, max_length=256)
    instructions: Text | None = None
    tools: list[Tool] | None = Field(None, max_length=20)
    metadata: Metadata = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    stream: bool | None = None
    max_prompt_tokens: int | None = Field(None, ge=256, le=INT32_MAX)
    max_completion_tokens: int | None = Field(None, ge=256, le=INT32_MAX)
    truncation_strategy: TruncationStrategy | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool = True
    response_format: ResponseFormat | None = None
    reasoning_effort: ReasoningEffort | None = None


class RunCreate(_RunOptions):
    additional_instructions: Text | None = None
    additional_messages: list[MessageCreate] | None = Field(None, max_length=MAX_THREAD_MESSAGES)


class ThreadAndRunCreate(_RunOptions):
    thread: ThreadCreate | None = None
    tool_resources: ToolResources | None = None


class RunModify(RequestModel):
    metadata: Metadata = None


class ToolOutput(_Strict):
    tool_call_id: str
    output: str = Field(max_length=MAX_TOOL_OUTPUT)


class SubmitToolOutputs(RequestModel):
    tool_outputs: list[ToolOutput] = Field(max_length=MAX_TOOLS)
    stream: bool | None = None


class RunObject(WireModel):
    id: str
    object: Literal["thread.run"] = "thread.run"
    created_at: int
    thread_id: str
    assistant_id: str
    status: str
    required_action: dict[str, Any] | None
    last_error: dict[str, Any] | None
    expires_at: int | None
    started_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    incomplete_details: dict[str, Any] | None
    model: str
    instructions: str
    tools: list[dict[str, Any]]
    metadata: dict[str, str] | None
    usage: dict[str, int] | None
    temperature: float | None
    top_p: float | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    truncation_strategy: dict[str, Any] | None
    tool_choice: Any
    parallel_tool_calls: bool
    response_format: Any


class RunStepObject(WireModel):
    id: str
    object: Literal["thread.run.step"] = "thread.run.step"
    created_at: int
    assistant_id: str
    thread_id: str
    run_id: str
    type: str
    status: str
    step_details: dict[str, Any]
    last_error: dict[str, Any] | None
    expired_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    metadata: dict[str, str] | None
    usage: dict[str, int] | None

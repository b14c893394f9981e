"""Input items of the tools a client runs: their calls (replayed history) and their outputs
(`custom_tool_call_output` is beside `function_call_output` in `items.schemas`).

As OpenAI's `*ItemParam` schemas define them; each also accepts the fields the server sends
on the item, so an output item can come back as it was received.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from assistantd.kit.schemas import RequestModel
from assistantd.tools.client_params import LoadableTool

ItemId = Annotated[str, Field(min_length=1, max_length=64)]
ItemStatus = Literal["in_progress", "completed", "incomplete"]
OutputText = Annotated[str, StringConstraints(max_length=10_485_760)]


class _ClientItem(RequestModel):
    id: ItemId | None = None
    status: ItemStatus | None = None
    caller: dict[str, Any] | None = None
    created_by: str | None = None


class CustomToolCallItem(_ClientItem):
    type: Literal["custom_tool_call"]
    call_id: ItemId
    name: str = Field(min_length=1, max_length=128)
    input: OutputText
    namespace: str | None = None


class LocalShellAction(RequestModel):
    type: Literal["exec"]
    command: list[str]
    env: dict[str, str] = Field(default_factory=dict)
    timeout_ms: int | None = None
    working_directory: str | None = None
    user: str | None = None


class LocalShellCallItem(_ClientItem):
    type: Literal["local_shell_call"]
    call_id: ItemId
    action: LocalShellAction


class LocalShellCallOutputItem(_ClientItem):
    """Its `id` is the call's id (OpenAI's `LocalShellCallOutput`); `call_id` is ours too."""

    type: Literal["local_shell_call_output"]
    call_id: ItemId | None = None
    output: OutputText

    @model_validator(mode="after")
    def _names_its_call(self) -> LocalShellCallOutputItem:
        if self.id is None and self.call_id is None:
            raise ValueError("a local_shell_call_output needs its call's id in 'id'.")
        return self


class ShellAction(RequestModel):
    commands: list[str]
    timeout_ms: int | None = None
    max_output_length: int | None = None


class ShellCallItem(_ClientItem):
    type: Literal["shell_call"]
    call_id: ItemId
    action: ShellAction
    environment: dict[str, Any] | None = None


class ShellOutcome(RequestModel):
    type: Literal["exit", "timeout"]
    exit_code: int | None = None


class ShellOutputContent(RequestModel):
    stdout: OutputText
    stderr: OutputText
    outcome: ShellOutcome
    created_by: str | None = None


class ShellCallOutputItem(_ClientItem):
    type: Literal["shell_call_output"]
    call_id: ItemId
    output: list[ShellOutputContent]
    max_output_length: int | None = None


class PatchOperation(RequestModel):
    type: Literal["create_file", "update_file", "delete_file"]
    path: str
    diff: str | None = None


class ApplyPatchCallItem(_ClientItem):
    type: Literal["apply_patch_call"]
    call_id: ItemId
    operation: PatchOperation
    status: Literal["in_progress", "completed"]


class ApplyPatchCallOutputItem(_ClientItem):
    type: Literal["apply_patch_call_output"]
    call_id: ItemId
    status: Literal["completed", "failed"]  # type: ignore[assignment]
    output: OutputText | None = None


class ToolSearchCallItem(_ClientItem):
    type: Literal["tool_search_call"]
    call_id: ItemId | None = None
    execution: Literal["server", "client"] | None = None
    arguments: Any = None


class ToolSearchOutputItem(_ClientItem):
    type: Literal["tool_search_output"]
    call_id: ItemId | None = None
    execution: Literal["server", "client"] | None = None
    tools: list[LoadableTool] = Field(max_length=128)


class AdditionalToolsItem(RequestModel):
    """Tools made available from this point of the input on (Codex sends its tools so)."""

    type: Literal["additional_tools"]
    id: ItemId | None = None
    role: Literal["developer"]
    tools: list[LoadableTool] = Field(max_length=128)


CLIENT_ITEMS = (
    CustomToolCallItem,
    LocalShellCallItem,
    LocalShellCallOutputItem,
    ShellCallItem,
    ShellCallOutputItem,
    ApplyPatchCallItem,
    ApplyPatchCallOutputItem,
    ToolSearchCallItem,
    ToolSearchOutputItem,
    AdditionalToolsItem,
)
ClientItem = (
    CustomToolCallItem
    | LocalShellCallItem
    | LocalShellCallOutputItem
    | ShellCallItem
    | ShellCallOutputItem
    | ApplyPatchCallItem
    | ApplyPatchCallOutputItem
    | ToolSearchCallItem
    | ToolSearchOutputItem
    | AdditionalToolsItem
)

"""Wire models of the tools a Responses client runs itself (OpenAI's `FunctionToolParam`,
`CustomToolParam`, `NamespaceToolParam`, `LocalShellToolParam`, `FunctionShellToolParam`,
`ApplyPatchToolParam`, `ToolSearchToolParam`), shared by a request's `tools` and the tools a
`tool_search_output` item loads.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from assistantd.kit.schemas import RequestModel

FunctionName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")]


class FunctionToolParam(RequestModel):
    type: Literal["function"]
    name: FunctionName
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    defer_loading: bool | None = None


class CustomTextFormat(RequestModel):
    type: Literal["text"]


class CustomGrammarFormat(RequestModel):
    type: Literal["grammar"]
    # Checked by `tools.client.check_grammar` (a 400 naming the tool), not here: the syntax
    # error is then reported with the tool it belongs to.
    syntax: str
    definition: str = Field(max_length=1_048_576)


CustomFormat = Annotated[CustomTextFormat | CustomGrammarFormat, Field(discriminator="type")]


class CustomToolParam(RequestModel):
    type: Literal["custom"]
    name: FunctionName
    description: str | None = None
    format: CustomFormat | None = None
    defer_loading: bool | None = None


NamespaceMember = Annotated[FunctionToolParam | CustomToolParam, Field(discriminator="type")]


class NamespaceToolParam(RequestModel):
    type: Literal["namespace"]
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")]
    description: str
    tools: list[NamespaceMember] = Field(min_length=1, max_length=128)


class LocalShellToolParam(RequestModel):
    type: Literal["local_shell"]


class ShellToolParam(RequestModel):
    type: Literal["shell"]
    # A client runs the commands (`local`, or no environment); a hosted container is not
    # served by this tool (`responses.client_tools` refuses it by name).
    environment: dict[str, Any] | None = None


class ApplyPatchToolParam(RequestModel):
    type: Literal["apply_patch"]


class ToolSearchToolParam(RequestModel):
    type: Literal["tool_search"]
    execution: Literal["server", "client"] | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None


CLIENT_TOOL_PARAMS = (
    FunctionToolParam,
    CustomToolParam,
    NamespaceToolParam,
    LocalShellToolParam,
    ShellToolParam,
    ApplyPatchToolParam,
    ToolSearchToolParam,
)
ClientToolParam = (
    FunctionToolParam
    | CustomToolParam
    | NamespaceToolParam
    | LocalShellToolParam
    | ShellToolParam
    | ApplyPatchToolParam
    | ToolSearchToolParam
)

# What a `tool_search_output` or an `additional_tools` input item may make available.
LoadableTool = Annotated[ClientToolParam, Field(discriminator="type")]

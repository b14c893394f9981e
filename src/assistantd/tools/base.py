"""The interface server-side tools (code_interpreter, file_search) implement for the run engine.

The model sees every tool as a chat-completions function. Function tools go back to the client
(`requires_action`); server tools are executed here and their results go straight back to the
model, with their details recorded in the run step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.blobs.store import BlobStore
from assistantd.settings import Settings


@dataclass
class ToolContext:
    project: str
    thread_id: str
    run_id: str
    assistant_id: str
    tool_definition: dict[str, Any]  # the run's tool entry, e.g. {"type": "file_search", ...}
    tool_resources: dict[str, Any]  # assistant's resources merged with the thread's
    sessions: async_sessionmaker[AsyncSession]
    blobs: BlobStore
    settings: Settings
    include: list[str] = field(default_factory=list)
    # What the call's item knew before it ran (an MCP call's server label and tool name).
    call: dict[str, Any] = field(default_factory=dict)
    # Streams a partial tool call (the `tool_calls[i]` delta object, without `index`).
    emit_delta: Callable[[dict[str, Any]], None] = lambda _delta: None
    # The container (a named sandbox, Responses API) the code interpreter runs in; without
    # one, the thread's own sandbox.
    container_id: str | None = None
    # The container was made for this execution: no sandbox of it can exist yet (none to
    # look for, here or in Docker).
    new_container: bool = False
    # The model's context window in tokens (None: unknown).
    context_window: int | None = None

    @property
    def sandbox_key(self) -> str:
        """What the code interpreter's sandbox session is keyed by."""
        return self.container_id or self.thread_id


@dataclass
class ToolResult:
    output: str  # what the model reads
    details: dict[str, Any]  # the step's tool call object, in OpenAI's shape
    message_parts: list[dict[str, Any]] = field(default_factory=list)  # e.g. image_file parts
    # The Responses API's call item fields (`code` and `outputs`, `queries` and `results`).
    item_data: dict[str, Any] = field(default_factory=dict)
    failed: bool = False  # the tool could not run (the model reads why); the run goes on


class ToolUnavailable(Exception):
    """The tool cannot run on this server right now; the message says why (the model reads it
    as the call's result, the run goes on)."""


class ServerTool(Protocol):
    type: str  # the Assistants tool type, e.g. "code_interpreter"
    function_name: str  # the function name the model calls

    def function_schema(self, definition: dict[str, Any]) -> dict[str, Any]:
        """The chat-completions `tools[]` entry for this tool."""
        ...

    def initial_details(self, call_id: str) -> dict[str, Any]:
        """The step's tool call object before execution (streamed in the first step delta)."""
        ...

    async def check_available(self) -> None:
        """Raise ToolUnavailable when the tool cannot run (e.g. no sandbox)."""
        ...

    async def execute(self, ctx: ToolContext, call_id: str, arguments: str) -> ToolResult:
        """Run one call; raises ToolUnavailable when the tool cannot run now."""
        ...

    def failure(self, call_id: str, arguments: str, message: str) -> ToolResult:
        """The result of a call the tool could not run: `message` for the model, and the
        step's and item's fields showing it."""
        ...

    async def annotate(
        self, ctx: ToolContext, text: str, results: list[ToolResult]
    ) -> list[dict[str, Any]]:
        """Annotations for the final assistant text (file citations, file paths)."""
        ...


class ToolRegistry:
    """The server tools this process can execute, by Assistants tool type."""

    def __init__(self, tools: list[ServerTool] | None = None) -> None:
        self._by_type = {tool.type: tool for tool in tools or []}

    def start(self) -> None:
        """Start the tools' background work (e.g. the sandbox pool); tools may not have any."""
        for tool in self._by_type.values():
            start = getattr(tool, "start", None)
            if start is not None:
                start()

    async def aclose(self) -> None:
        for tool in self._by_type.values():
            aclose = getattr(tool, "aclose", None)
            if aclose is not None:
                await aclose()

    def all(self) -> list[ServerTool]:
        return list(self._by_type.values())

    def get(self, tool_type: str) -> ServerTool | None:
        return self._by_type.get(tool_type)

    def by_function_name(self, name: str) -> ServerTool | None:
        for tool in self._by_type.values():
            claims = getattr(tool, "claims", None)  # a tool of many functions (MCP)
            if tool.function_name == name or (claims is not None and claims(name)):
                return tool
        return None

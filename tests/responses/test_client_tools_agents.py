"""The OpenAI Agents SDK's own shell and apply_patch tools against assistantd: the SDK runs the
calls the model makes and sends their outputs back, replaying the whole history (the call
items as the server sent them) on each model call, or chaining by `previous_response_id`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import (
    Agent,
    ApplyPatchTool,
    OpenAIResponsesModel,
    Runner,
    ShellTool,
    set_tracing_disabled,
)
from agents.editor import ApplyPatchOperation, ApplyPatchResult
from agents.tool import ShellCommandRequest
from openai import AsyncOpenAI

from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import LiveServer

set_tracing_disabled(True)  # no trace export (it would go to api.openai.com)

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def aclient(server: LiveServer, api_key: str) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(api_key=api_key, base_url=f"{server.url}/v1", max_retries=0) as c:
        yield c


class Workspace:
    """What the agent's tools did."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.patches: list[tuple[str, str, str | None]] = []

    def shell(self, request: ShellCommandRequest) -> str:
        self.commands.append(list(request.data.action.commands))
        return "hello from the shell\n"

    def create_file(self, operation: ApplyPatchOperation) -> ApplyPatchResult:
        self.patches.append((operation.type, operation.path, operation.diff))
        return ApplyPatchResult(status="completed", output=f"created {operation.path}")

    def update_file(self, operation: ApplyPatchOperation) -> ApplyPatchResult:
        return self.create_file(operation)

    def delete_file(self, operation: ApplyPatchOperation) -> ApplyPatchResult:
        return self.create_file(operation)


def tool_messages(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The (function name, tool result) pairs a chat request replays, in order."""
    names: dict[str, str] = {}
    pairs: list[tuple[str, str]] = []
    for message in body["messages"]:
        for call in message.get("tool_calls") or []:
            names[call["id"]] = call["function"]["name"]
        if message["role"] == "tool":
            pairs.append((names[message["tool_call_id"]], message["content"]))
    return pairs


@pytest.mark.parametrize("chained", [False, True])
async def test_shell_and_apply_patch_run_by_the_sdk(
    aclient: AsyncOpenAI, model: ScriptedModel, marker: str, chained: bool
) -> None:
    patch = {"type": "create_file", "path": "notes.txt", "diff": "+remember\n"}
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("shell", '{"commands": ["echo hello"]}')]),
        Reply(tool_calls=[ToolCall("apply_patch", json.dumps(patch))]),
        Reply(text="All done."),
    )
    workspace = Workspace()
    agent = Agent(
        name="coder",
        instructions="Use the tools.",
        tools=[ShellTool(executor=workspace.shell), ApplyPatchTool(editor=workspace)],
        model=OpenAIResponsesModel(model="gpt-4o", openai_client=aclient),
    )
    if chained:
        result = await Runner.run(agent, marker, auto_previous_response_id=True)
    else:
        result = await Runner.run(agent, marker)
    assert result.final_output == "All done."
    assert workspace.commands == [["echo hello"]]
    assert workspace.patches == [("create_file", "notes.txt", "+remember\n")]
    last = model.requests(marker)[-1]
    [(shell, shell_output), (patcher, patch_output)] = tool_messages(last)
    assert shell == "shell"
    assert "hello from the shell" in shell_output
    assert patcher == "apply_patch"
    assert patch_output == "completed: created notes.txt"

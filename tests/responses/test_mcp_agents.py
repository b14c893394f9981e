"""The OpenAI Agents SDK's `HostedMCPTool` against assistantd and a real MCP server (fastmcp
over streamable HTTP): a call with no approval, and one the agent approves (or rejects) with
its `on_approval_request` callback, which the SDK answers with an `mcp_approval_response` in
its next request's input (the whole history, explicitly)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from agents import (
    Agent,
    HostedMCPTool,
    MCPToolApprovalFunctionResult,
    MCPToolApprovalRequest,
    OpenAIResponsesModel,
    Runner,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

from tests.support.mcp_server import McpServer
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import LiveServer

set_tracing_disabled(True)
pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[McpServer]:
    server = McpServer().start()
    yield server
    server.stop()


@pytest.fixture
async def aclient(server: LiveServer, api_key: str) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(api_key=api_key, base_url=f"{server.url}/v1", max_retries=0) as c:
        yield c


def _agent(client: AsyncOpenAI, config: dict[str, Any], **extra: Any) -> Agent[Any]:
    return Agent(
        name="calc",
        instructions="Use the calculator.",
        tools=[HostedMCPTool(tool_config=config, **extra)],  # type: ignore[arg-type]
        model=OpenAIResponsesModel(model="gpt-4o", openai_client=client),
    )


def _config(server: McpServer, approval: Any) -> dict[str, Any]:
    return {
        "type": "mcp",
        "server_label": "calc",
        "server_url": server.url,
        "require_approval": approval,
    }


async def test_a_hosted_mcp_call(
    aclient: AsyncOpenAI, model: ScriptedModel, marker: str, mcp_server: McpServer
) -> None:
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("mcp__calc__add", json.dumps({"a": 4, "b": 5}))]),
        Reply(text="It is 9."),
    )
    result = await Runner.run(_agent(aclient, _config(mcp_server, "never")), marker)
    assert result.final_output == "It is 9."
    kinds = [item.type for item in result.new_items]
    assert "mcp_list_tools_item" in kinds
    tool_messages = [m for m in model.requests(marker)[1]["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == ["sum=9"]


@pytest.mark.parametrize("approve", [True, False])
async def test_an_approval_through_the_callback(
    aclient: AsyncOpenAI,
    model: ScriptedModel,
    marker: str,
    mcp_server: McpServer,
    approve: bool,
) -> None:
    asked: list[str] = []

    def decide(request: MCPToolApprovalRequest) -> MCPToolApprovalFunctionResult:
        asked.append(request.data.name)
        if approve:
            return {"approve": True}
        return {"approve": False, "reason": "not today"}

    model.script(
        marker,
        Reply(tool_calls=[ToolCall("mcp__calc__add", json.dumps({"a": 1, "b": 2}))]),
        Reply(text="finished"),
    )
    calls = len(mcp_server.calls)
    agent = _agent(aclient, _config(mcp_server, "always"), on_approval_request=decide)
    result = await Runner.run(agent, marker)
    assert asked == ["add"]
    assert result.final_output == "finished"
    tool_messages = [m for m in model.requests(marker)[-1]["messages"] if m["role"] == "tool"]
    if approve:
        assert len(mcp_server.calls) == calls + 1
        assert [m["content"] for m in tool_messages] == ["sum=3"]
    else:
        assert len(mcp_server.calls) == calls
        assert len(tool_messages) == 1
        assert "not today" in tool_messages[0]["content"]

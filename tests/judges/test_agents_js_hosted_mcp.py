"""The Agents SDK for JavaScript's `hostedMcpTool` against assistantd, whose worker calls a real
MCP server (fastmcp over streamable HTTP, `tests/support/mcp_server.py`): a call that needs no
approval, and calls approved and rejected through the SDK's `onApproval`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.judges.test_agents_js import node
from tests.support.mcp_server import McpServer
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import LiveServer

SCRIPT = Path(__file__).resolve().parent / "agents_js" / "hosted_mcp.mjs"


@pytest.fixture(scope="module")
def script(npm_tools: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("agents-js-hosted-mcp")
    shutil.copy(SCRIPT, folder / SCRIPT.name)
    (folder / "node_modules").symlink_to(npm_tools / "agents" / "node_modules")
    return folder / SCRIPT.name


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[McpServer]:
    server = McpServer().start()
    yield server
    server.stop()


def tool_replies_of(model: ScriptedModel, match: str) -> list[str]:
    """What the model was told by the tools, in its last request for `match`."""
    return [m["content"] for m in model.requests(match)[-1]["messages"] if m["role"] == "tool"]


def test_hosted_mcp_tool(
    script: Path,
    server: LiveServer,
    api_key: str,
    model: ScriptedModel,
    marker: str,
    mcp_server: McpServer,
) -> None:
    for mode, (a, b) in {"never": (4, 5), "yes": (2, 3), "no": (2, 3)}.items():
        call = ToolCall("mcp__calc__add", json.dumps({"a": a, "b": b}))
        model.script(f"{marker} {mode}:", Reply(tool_calls=[call]), Reply(text=f"{mode}: done"))
    calls_before = len(mcp_server.calls)
    out = node(script, f"{server.url}/v1", api_key, marker, mcp_server.url)

    never = out["never"]
    assert never["final"] == "never: done"
    assert "mcp_list_tools" in never["kinds"]
    assert "mcp_call" in never["kinds"]
    tool_replies = tool_replies_of(model, f"{marker} never:")
    assert tool_replies == ["sum=9"]

    approved = out["approved"]
    assert approved["final"] == "yes: done"
    assert approved["asked"] == ["add"]
    yes_replies = tool_replies_of(model, f"{marker} yes:")
    assert yes_replies == ["sum=5"]

    rejected = out["rejected"]
    assert rejected["final"] == "no: done"
    assert rejected["asked"] == ["add"]
    no_replies = tool_replies_of(model, f"{marker} no:")
    assert len(no_replies) == 1
    assert "sum=" not in no_replies[0]
    # the server ran the call that needed none and the approved one, not the rejected one
    assert mcp_server.calls[calls_before:] == ["add", "add"]

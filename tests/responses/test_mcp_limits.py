"""The `mcp` tool under the operator's settings (a short timeout, a small output limit, host
lists), across a server restart, in conversations and background responses, and over a
`store: false` history the client carries."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.runs.conftest import Tuned, wait_until
from tests.support import strict_types
from tests.support.mcp_server import McpServer
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[McpServer]:
    server = McpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tuned(tuned_server: Callable[..., Tuned]) -> Tuned:
    return tuned_server(
        {
            "ASSISTANTD_MCP_TIMEOUT_SECONDS": "2",
            "ASSISTANTD_MCP_MAX_OUTPUT_BYTES": "4096",
            "ASSISTANTD_MCP_ALLOWED_HOSTS": "127.0.0.1,10.0.0.0/8",
            "ASSISTANTD_MCP_DENIED_HOSTS": "10.9.0.0/16,evil.example",
        }
    )


def _tool(server: McpServer, approval: Any = "never") -> dict[str, Any]:
    return {
        "type": "mcp",
        "server_label": "calc",
        "server_url": server.url,
        "require_approval": approval,
    }


def test_a_hanging_tool_times_out_and_outputs_are_bounded(
    tuned: Tuned, model: ScriptedModel, marker: str, mcp_server: McpServer
) -> None:
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("mcp__calc__slow", "{}")]),
        Reply(tool_calls=[ToolCall("mcp__calc__medium", "{}")]),
        Reply(tool_calls=[ToolCall("mcp__calc__big", "{}")]),
        Reply(text="done"),
    )
    done = tuned.client.responses.create(model="scripted", input=marker, tools=[_tool(mcp_server)])
    assert done.status == "completed"
    strict_types.response(done.model_dump(mode="json"))
    slow, medium, big = done.output[1:4]
    assert slow.type == "mcp_call"
    assert slow.status == "failed"
    assert "2 seconds" in json.dumps(slow.model_dump()["error"])
    assert medium.type == "mcp_call"
    assert medium.output is not None
    assert "cut off" in medium.output
    assert len(medium.output) < 4200
    assert big.type == "mcp_call"
    assert big.status == "failed"
    assert big.error is not None
    reads = [m for m in model.requests(marker)[1]["messages"] if m["role"] == "tool"]
    assert "did not answer within 2 seconds" in reads[0]["content"]


@pytest.mark.parametrize(
    "url", ["http://evil.example/mcp", "http://10.9.1.1/mcp", "http://169.254.169.254/latest"]
)
def test_hosts_the_lists_refuse_are_400s(tuned: Tuned, url: str) -> None:
    tool = {"type": "mcp", "server_label": "x", "server_url": url}
    with pytest.raises(openai.BadRequestError) as caught:
        tuned.client.responses.create(model="scripted", input="hi", tools=[tool])
    assert caught.value.body["param"] == "tools[0].server_url"  # type: ignore[index]


def test_a_pending_approval_survives_a_restart(
    tuned: Tuned, model: ScriptedModel, marker: str, mcp_server: McpServer
) -> None:
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("mcp__calc__add", json.dumps({"a": 6, "b": 7}))]),
        Reply(text="13"),
    )
    first = tuned.client.responses.create(
        model="scripted", input=marker, tools=[_tool(mcp_server, "always")]
    )
    request = first.output[-1]
    assert request.type == "mcp_approval_request"
    tuned.api.stop()
    tuned.api.start()
    second = tuned.client.responses.create(
        model="scripted",
        previous_response_id=first.id,
        tools=[_tool(mcp_server, "always")],
        input=[
            {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
        ],
    )
    assert [item.type for item in second.output] == ["mcp_call", "message"]
    assert second.output[0].type == "mcp_call"
    assert second.output[0].output == "sum=13"


def test_a_conversation_in_the_background_lists_once(
    client: OpenAI, model: ScriptedModel, marker: str, mcp_server: McpServer
) -> None:
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("mcp__calc__add", json.dumps({"a": 1, "b": 2}))]),
        Reply(text="three"),
        Reply(text="again"),
    )
    conversation = client.conversations.create()
    before = mcp_server.list_requests
    outputs = []
    for _ in range(2):
        started = client.responses.create(
            model="scripted",
            input=marker,
            tools=[_tool(mcp_server)],
            conversation=conversation.id,
            background=True,
        )
        done = wait_until(
            lambda started=started: client.responses.retrieve(started.id),
            lambda r: r.status == "completed",
            timeout=30,
            what="the background response",
        )
        outputs.append([item.type for item in done.output])
    assert outputs == [["mcp_list_tools", "mcp_call", "message"], ["message"]]
    assert mcp_server.list_requests - before == 1
    kinds = [item.type for item in client.conversations.items.list(conversation.id, order="asc")]
    assert kinds.count("mcp_list_tools") == 1
    assert "mcp_call" in kinds


def test_an_unstored_history_carries_the_list_and_the_approval(
    client: OpenAI, model: ScriptedModel, marker: str, mcp_server: McpServer
) -> None:
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("mcp__calc__add", json.dumps({"a": 2, "b": 2}))]),
        Reply(text="four"),
    )
    tools = [_tool(mcp_server, "always")]
    history: list[Any] = [{"role": "user", "content": marker}]
    before = mcp_server.list_requests
    first = client.responses.create(model="scripted", input=history, tools=tools, store=False)
    assert [item.type for item in first.output] == ["mcp_list_tools", "mcp_approval_request"]
    history += [item.model_dump(mode="json", exclude_none=True) for item in first.output]
    history.append(
        {
            "type": "mcp_approval_response",
            "approval_request_id": first.output[-1].id,
            "approve": True,
        }
    )
    second = client.responses.create(model="scripted", input=history, tools=tools, store=False)
    assert [item.type for item in second.output] == ["mcp_call", "message"]
    assert second.output[0].type == "mcp_call"
    assert second.output[0].output == "sum=4"
    assert mcp_server.list_requests - before == 1


def test_headers_and_authorization_reach_the_server_and_are_not_stored(
    tuned: Tuned, model: ScriptedModel, marker: str, mcp_server: McpServer
) -> None:
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("mcp__calc__add", json.dumps({"a": 1, "b": 1}))]),
        Reply(text="two"),
    )
    secret, token = f"key-{marker}", f"tok-{marker}"
    tool = {**_tool(mcp_server), "headers": {"X-Api-Key": secret}, "authorization": token}
    seen = len(mcp_server.headers_seen)
    done = tuned.client.responses.create(model="scripted", input=marker, tools=[tool])
    assert done.output[1].type == "mcp_call"
    assert done.output[1].output == "sum=2"
    sent = mcp_server.headers_seen[seen:]
    assert sent  # the list and the call
    for headers in sent:
        assert headers.get("x-api-key") == secret
        assert headers.get("authorization") == f"Bearer {token}"
    echoed = done.model_dump(mode="json")["tools"][0]
    assert echoed["headers"] is None
    assert echoed.get("authorization") is None
    stored = tuned.sql("SELECT tools, options FROM runs WHERE id = :id", id=done.id)
    assert stored
    assert secret not in str(stored[0])
    assert token not in str(stored[0])

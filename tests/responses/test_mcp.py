"""The `mcp` hosted tool: a real MCP server (fastmcp over streamable HTTP), the scripted model
calling its tools as functions, tool lists kept as items, approvals, failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.responses.conftest import raw_events
from tests.support import strict_types
from tests.support.mcp_server import McpServer
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[McpServer]:
    server = McpServer().start()
    yield server
    server.stop()


def _tool(server: McpServer, **extra: Any) -> dict[str, Any]:
    return {
        "type": "mcp",
        "server_label": "calc",
        "server_url": server.url,
        "require_approval": "never",
        **extra,
    }


def _types(output: list[Any]) -> list[str]:
    return [item.type for item in output]


def test_a_call_and_the_list_once_across_a_chain(
    client: OpenAI, model: ScriptedModel, marker: str, mcp_server: McpServer
) -> None:
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("mcp__calc__add", json.dumps({"a": 2, "b": 3}))]),
        Reply(text="The sum is 5."),
        Reply(text="second"),
        Reply(text="third"),
    )
    before = mcp_server.list_requests
    first = client.responses.create(model="scripted", input=marker, tools=[_tool(mcp_server)])
    assert first.status == "completed"
    assert _types(first.output) == ["mcp_list_tools", "mcp_call", "message"]
    listed, call = first.output[0], first.output[1]
    assert listed.type == "mcp_list_tools"
    assert listed.server_label == "calc"
    assert {"add", "boom", "slow", "big"} <= {t.name for t in listed.tools}
    assert call.type == "mcp_call"
    assert call.output == "sum=5"
    assert call.error is None
    assert call.name == "add"
    assert json.loads(call.arguments) == {"a": 2, "b": 3}
    strict_types.response(first.model_dump(mode="json"))
    # the model read the result
    sent = model.requests(marker)[1]["messages"]
    assert any(m.get("role") == "tool" and m.get("content") == "sum=5" for m in sent)
    offered = {t["function"]["name"] for t in model.requests(marker)[0]["tools"]}
    assert "mcp__calc__add" in offered
    previous = first.id
    for _ in range(2):
        nxt = client.responses.create(
            model="scripted",
            input=f"{marker} again",
            tools=[_tool(mcp_server)],
            previous_response_id=previous,
        )
        assert nxt.status == "completed"
        assert "mcp_list_tools" not in _types(nxt.output)
        previous = nxt.id
    assert mcp_server.list_requests - before == 1
    offered = {t["function"]["name"] for t in model.requests(marker)[-1]["tools"]}
    assert "mcp__calc__add" in offered  # from the list item, not fetched again


def test_the_calls_of_a_chain_share_one_mcp_session(
    client: OpenAI, model: ScriptedModel, marker: str, mcp_server: McpServer
) -> None:
    call = ToolCall("mcp__shared__add", json.dumps({"a": 1, "b": 1}))
    model.script(
        marker,
        Reply(tool_calls=[call]),
        Reply(tool_calls=[call, call]),
        Reply(text="first"),
        Reply(tool_calls=[call]),
        Reply(text="second"),
    )
    tool = _tool(mcp_server, server_label="shared")
    before = len(mcp_server.headers_seen)
    first = client.responses.create(model="scripted", input=marker, tools=[tool])
    assert _types(first.output) == ["mcp_list_tools", "mcp_call", "mcp_call", "mcp_call", "message"]
    second = client.responses.create(
        model="scripted", input=marker, tools=[tool], previous_response_id=first.id
    )
    assert _types(second.output) == ["mcp_call", "message"]
    seen = mcp_server.headers_seen[before:]
    assert len(seen) >= 5  # the list and four calls
    sessions = [headers.get("mcp-session-id") for headers in seen]
    assert sessions.count(None) == 1  # one `initialize`
    assert set(sessions) == {None, sessions[-1]}


def test_a_kept_session_the_server_forgot_is_opened_again(
    client: OpenAI, model: ScriptedModel, marker: str
) -> None:
    call = ToolCall("mcp__calc__add", json.dumps({"a": 2, "b": 2}))
    model.script(
        marker, Reply(tool_calls=[call]), Reply(text="4"), Reply(tool_calls=[call]), Reply(text="4")
    )
    server = McpServer().start()
    try:
        tool = _tool(server)
        first = client.responses.create(model="scripted", input=marker, tools=[tool])
        assert first.output[1].type == "mcp_call"
        assert first.output[1].output == "sum=4"
    finally:
        server.stop()
    again = McpServer(port=server.port).start()  # knows none of the first one's sessions
    try:
        second = client.responses.create(
            model="scripted", input=marker, tools=[tool], previous_response_id=first.id
        )
        call_item = second.output[0]
        assert call_item.type == "mcp_call"
        assert call_item.error is None
        assert call_item.output == "sum=4"
        assert again.calls == ["add"]
    finally:
        again.stop()


def test_allowed_tools_limit_what_the_model_sees(
    client: OpenAI, model: ScriptedModel, marker: str, mcp_server: McpServer
) -> None:
    model.script(marker, Reply(text="ok"))
    client.responses.create(
        model="scripted", input=marker, tools=[_tool(mcp_server, allowed_tools=["add"])]
    )
    offered = {t["function"]["name"] for t in model.requests(marker)[0]["tools"]}
    assert offered == {"mcp__calc__add"}


@pytest.mark.parametrize("approve", [True, False])
def test_an_approval_ends_the_response_and_the_next_runs_or_declines(
    client: OpenAI, model: ScriptedModel, marker: str, mcp_server: McpServer, approve: bool
) -> None:
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("mcp__calc__add", json.dumps({"a": 1, "b": 1}))]),
        Reply(text="done"),
    )
    tool = _tool(mcp_server, require_approval={"always": {"tool_names": ["add"]}})
    first = client.responses.create(model="scripted", input=marker, tools=[tool])
    assert first.status == "completed"
    assert _types(first.output) == ["mcp_list_tools", "mcp_approval_request"]
    request = first.output[-1]
    assert request.type == "mcp_approval_request"
    assert request.name == "add"
    strict_types.response(first.model_dump(mode="json"))
    calls = len(mcp_server.calls)
    second = client.responses.create(
        model="scripted",
        previous_response_id=first.id,
        tools=[tool],
        input=[
            {
                "type": "mcp_approval_response",
                "approval_request_id": request.id,
                "approve": approve,
            }
        ],
    )
    assert second.status == "completed"
    strict_types.response(second.model_dump(mode="json"))
    last = model.requests(marker)[-1]["messages"]
    tool_messages = [m["content"] for m in last if m.get("role") == "tool"]
    if approve:
        assert _types(second.output) == ["mcp_call", "message"]
        call = second.output[0]
        assert call.type == "mcp_call"
        assert call.output == "sum=2"
        assert call.approval_request_id == request.id
        assert len(mcp_server.calls) == calls + 1
        assert tool_messages == ["sum=2"]
    else:
        assert _types(second.output) == ["message"]
        assert len(mcp_server.calls) == calls
        assert tool_messages
        assert "declined" in tool_messages[0]


def test_a_tool_error_is_a_failed_call_the_model_reads(
    client: OpenAI, model: ScriptedModel, marker: str, mcp_server: McpServer
) -> None:
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("mcp__calc__boom", "{}")]),
        Reply(tool_calls=[ToolCall("mcp__calc__big", "{}")]),
        Reply(text="sorry"),
    )
    done = client.responses.create(model="scripted", input=marker, tools=[_tool(mcp_server)])
    assert done.status == "completed"
    boom, big = done.output[1], done.output[2]
    assert boom.type == "mcp_call"
    assert boom.status == "failed"
    assert boom.error is not None
    # bounded: cut off at the output limit, or refused by the transport's own limit
    assert big.type == "mcp_call"
    if big.output is not None:
        assert len(big.output) < 1_100_000
        assert "cut off" in big.output
    else:
        assert big.status == "failed"
        assert big.error is not None
    strict_types.response(done.model_dump(mode="json"))
    sent = model.requests(marker)[1]["messages"]
    assert any("exploded" in str(m.get("content")) for m in sent if m.get("role") == "tool")


def test_an_unreachable_server_is_a_failed_list(
    client: OpenAI, model: ScriptedModel, marker: str
) -> None:
    model.script(marker, Reply(text="no tools"))
    done = client.responses.create(
        model="scripted",
        input=marker,
        tools=[{"type": "mcp", "server_label": "gone", "server_url": "http://127.0.0.1:9/mcp"}],
    )
    assert done.status == "completed"
    listed = done.output[0]
    assert listed.type == "mcp_list_tools"
    assert listed.error
    assert not listed.tools


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        ({"connector_id": "connector_gmail"}, "tools[0].connector_id"),
        ({"server_url": "http://169.254.169.254/mcp"}, "tools[0].server_url"),
        ({"server_url": "http://metadata.google.internal/"}, "tools[0].server_url"),
        ({"server_url": "http://[fd00:ec2::254]/"}, "tools[0].server_url"),
    ],
)
def test_refused_servers_are_400s(client: OpenAI, tool: dict[str, Any], param: str) -> None:
    spec = {"type": "mcp", "server_label": "x", **tool}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="scripted", input="hi", tools=[spec])
    assert caught.value.body["param"] == param  # type: ignore[index]


def test_stream_events_parse_strictly(
    client: OpenAI, model: ScriptedModel, marker: str, mcp_server: McpServer
) -> None:
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("mcp__calc__add", json.dumps({"a": 20, "b": 22}))]),
        Reply(text="42"),
    )
    events = raw_events(
        client,
        "responses",
        body={"model": "scripted", "input": marker, "stream": True, "tools": [_tool(mcp_server)]},
    )
    for data in events:
        strict_types.event(data)
    kinds = [e["type"] for e in events]
    for expected in (
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.completed",
    ):
        assert expected in kinds
    assert kinds[-1] == "response.completed"


def test_an_sse_server(client: OpenAI, model: ScriptedModel, marker: str) -> None:
    server = McpServer(transport="sse").start()
    try:
        model.script(
            marker,
            Reply(tool_calls=[ToolCall("mcp__calc__add", json.dumps({"a": 7, "b": 8}))]),
            Reply(text="15"),
        )
        done = client.responses.create(model="scripted", input=marker, tools=[_tool(server)])
        assert _types(done.output) == ["mcp_list_tools", "mcp_call", "message"]
        call = done.output[1]
        assert call.type == "mcp_call"
        assert call.output == "sum=15"
    finally:
        server.stop()


def test_an_approval_of_no_request_is_a_400(client: OpenAI) -> None:
    answer = {"type": "mcp_approval_response", "approval_request_id": "mcpr_nope", "approve": True}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="scripted", input=[answer])
    assert caught.value.body["param"] == "input[0].approval_request_id"  # type: ignore[index]


def test_failures_and_approval_requests_stream_strictly(
    client: OpenAI, model: ScriptedModel, marker: str, mcp_server: McpServer
) -> None:
    gone = {"type": "mcp", "server_label": "gone", "server_url": "http://127.0.0.1:9/mcp"}
    ask = f"ask-{marker[::-1]}"  # a rule of its own (a rule matches what contains it)
    model.script(marker, Reply(tool_calls=[ToolCall("mcp__calc__boom", "{}")]), Reply(text="no"))
    model.script(ask, Reply(tool_calls=[ToolCall("mcp__calc__add", json.dumps({"a": 1, "b": 2}))]))
    body = {"model": "scripted", "input": marker, "stream": True}
    failing = raw_events(client, "responses", body={**body, "tools": [_tool(mcp_server), gone]})
    for data in failing:
        strict_types.event(data)
    kinds = [e["type"] for e in failing]
    assert "response.mcp_list_tools.failed" in kinds
    assert "response.mcp_call.failed" in kinds
    assert kinds[-1] == "response.completed"
    asking = raw_events(
        client,
        "responses",
        body={
            **body,
            "input": ask,
            "tools": [_tool(mcp_server, require_approval="always")],
        },
    )
    for data in asking:
        strict_types.event(data)
    done = [e["item"] for e in asking if e["type"] == "response.output_item.done"]
    assert done[-1]["type"] == "mcp_approval_request"
    assert json.loads(done[-1]["arguments"]) == {"a": 1, "b": 2}
    assert "response.mcp_call.in_progress" not in [e["type"] for e in asking]
    assert asking[-1]["type"] == "response.completed"


def test_tool_choice_forces_a_named_mcp_tool(
    client: OpenAI, model: ScriptedModel, marker: str, mcp_server: McpServer
) -> None:
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("mcp__calc__add", json.dumps({"a": 4, "b": 5}))]),
        Reply(text="9"),
    )
    choice = {"type": "mcp", "server_label": "calc", "name": "add"}
    done = client.responses.create(
        model="scripted",
        input=marker,
        tools=[_tool(mcp_server)],
        tool_choice=choice,  # type: ignore[arg-type]
    )
    assert done.status == "completed"
    assert _types(done.output) == ["mcp_list_tools", "mcp_call", "message"]
    assert done.tool_choice.type == "mcp"
    assert (done.tool_choice.server_label, done.tool_choice.name) == ("calc", "add")
    strict_types.response(done.model_dump(mode="json"))
    first, second = model.requests(marker)
    assert first["tool_choice"] == {"type": "function", "function": {"name": "mcp__calc__add"}}
    assert second["tool_choice"] == "auto"  # forced once: the model reads the result freely


def test_tool_choice_forces_any_tool_of_an_mcp_server(
    client: OpenAI, model: ScriptedModel, marker: str, mcp_server: McpServer
) -> None:
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("mcp__calc__add", json.dumps({"a": 1, "b": 2}))]),
        Reply(text="3"),
    )
    own = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
    done = client.responses.create(
        model="scripted",
        input=marker,
        tools=[_tool(mcp_server, allowed_tools=["add", "boom"]), own],  # type: ignore[list-item]
        tool_choice={"type": "mcp", "server_label": "calc"},  # type: ignore[arg-type]
    )
    assert done.status == "completed"
    first, second = model.requests(marker)
    assert first["tool_choice"] == "required"
    assert {t["function"]["name"] for t in first["tools"]} == {"mcp__calc__add", "mcp__calc__boom"}
    assert second["tool_choice"] == "auto"
    assert "lookup" in {t["function"]["name"] for t in second["tools"]}


@pytest.mark.parametrize(
    ("choice", "param"),
    [
        ({"type": "mcp", "server_label": "nope"}, "tool_choice.server_label"),
        ({"type": "mcp", "server_label": "calc", "name": "boom"}, "tool_choice.name"),
    ],
)
def test_a_tool_choice_of_no_such_mcp_tool_is_a_400(
    client: OpenAI, mcp_server: McpServer, choice: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="scripted",
            input="hi",
            tools=[_tool(mcp_server, allowed_tools=["add"])],
            tool_choice=choice,  # type: ignore[arg-type]
        )
    assert caught.value.body["param"] == param  # type: ignore[index]


def test_a_tool_choice_of_a_tool_the_server_lacks_fails_the_response(
    client: OpenAI, model: ScriptedModel, marker: str, mcp_server: McpServer
) -> None:
    model.script(marker, Reply(text="never asked"))
    done = client.responses.create(
        model="scripted",
        input=marker,
        tools=[_tool(mcp_server)],
        tool_choice={"type": "mcp", "server_label": "calc", "name": "nothing"},  # type: ignore[arg-type]
    )
    assert done.status == "failed"
    assert done.error is not None
    assert "nothing" in done.error.message
    assert model.requests(marker) == []

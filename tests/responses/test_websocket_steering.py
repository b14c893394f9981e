"""`response.steer` ends the running response at its next safe boundary: before its next model
call (after the tools its model called ran), `incomplete` with `incomplete_details.reason`
`steered`, its output kept; the successor goes on at once with the steering input."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from openai import OpenAI
from openai.resources.responses.responses import ResponsesConnection

from tests.responses.test_websocket import receive, text_of, until_end
from tests.support.mcp_server import McpServer
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[McpServer]:
    server = McpServer().start()
    yield server
    server.stop()


@pytest.mark.parametrize("store", [True, False])
def test_steering_stops_the_response_after_its_tool_call(
    client: OpenAI, model: ScriptedModel, marker: str, mcp_server: McpServer, store: bool
) -> None:
    steer = f"{marker} now in words"
    add = ToolCall("mcp__calc__add", json.dumps({"a": 3, "b": 4}))
    # the model calls the tool slowly enough for the steering to come first; asked again
    # without the steering input, it would call it again
    model.script(marker, Reply(tool_calls=[add], delay=2.0))
    model.script(steer, Reply(text="seven"))
    tool = {
        "type": "mcp",
        "server_label": "calc",
        "server_url": mcp_server.url,
        "require_approval": "never",
    }
    request = {"model": "gpt-4o", "input": marker, "tools": [tool], "store": store}
    connection: ResponsesConnection
    with client.responses.connect() as connection:
        connection.send({"type": "response.create", **request})  # type: ignore[arg-type, typeddict-item]
        created = receive(connection)
        assert created["type"] == "response.created"
        target = created["response"]["id"]
        connection.send({"type": "response.steer", "previous_response_id": target, "input": steer})
        events = until_end(connection)
        assert [e["type"] for e in events].count("response.steer.accepted") == 1
        ended = events[-1]
        assert ended["type"] == "response.incomplete", ended
        steered = ended["response"]
        assert steered["id"] == target
        assert steered["incomplete_details"] == {"reason": "steered"}
        assert [item["type"] for item in steered["output"]] == ["mcp_list_tools", "mcp_call"]
        assert steered["output"][1]["output"] == "sum=7"
        successor = until_end(connection)
        assert successor[0]["type"] == "response.created"
        follow = successor[-1]["response"]
        assert successor[-1]["type"] == "response.completed", successor[-1]
        assert follow["previous_response_id"] == target
        assert text_of(follow) == "seven"
    assert len(model.requests(marker)) == 2  # the tool call, then the successor's one call
    seen = model.requests(steer)[-1]["messages"]
    assert [m["role"] for m in seen] == ["user", "assistant", "tool", "user"]
    assert seen[-1]["content"] == steer
    if store:
        assert client.responses.retrieve(target).incomplete_details.reason == "steered"  # type: ignore[union-attr]

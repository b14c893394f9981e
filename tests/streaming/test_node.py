"""Streaming through the official Node `openai` package (pinned in node/package.json; see
tests/support/node.py for how it is installed)."""

from __future__ import annotations

from typing import Any

import pytest
from openai import OpenAI
from openai.types.beta import Assistant

from tests.streaming.support import after_tool_outputs, function_call_run, text_run
from tests.support.node import node_with_openai, run_node
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import LiveServer


@pytest.fixture(scope="module")
def node() -> str:
    return node_with_openai()


def run_script(node: str, server: LiveServer, key: str, assistant_id: str, thread_id: str) -> Any:
    return run_node(node, "script.mjs", f"{server.url}/v1", key, assistant_id, thread_id)


def test_node_sdk_streams_a_text_run(
    node: str,
    server: LiveServer,
    api_key: str,
    client: OpenAI,
    assistant: Assistant,
    model: ScriptedModel,
    marker: str,
) -> None:
    chunks = ["Node", " sees", " every", " token", "."]
    model.script(marker, Reply(text=chunks))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    seen = run_script(node, server, api_key, assistant.id, thread.id)
    assert seen["events"] == text_run(len(chunks))
    assert seen["deltas"] == chunks
    assert seen["rounds"] == ["completed"]
    assert seen["stored"] == "".join(chunks)
    assert client.beta.threads.runs.retrieve(seen["run"]["id"], thread_id=thread.id).status == (
        "completed"
    )


def test_node_sdk_streams_function_calls_and_tool_outputs(
    node: str,
    server: LiveServer,
    api_key: str,
    client: OpenAI,
    assistant: Assistant,
    model: ScriptedModel,
    marker: str,
) -> None:
    arguments = '{"city": "Lima"}'
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("get_weather", arguments)]),
        Reply(text=["It is", " 22C."]),
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    seen = run_script(node, server, api_key, assistant.id, thread.id)
    assert seen["events"] == [*function_call_run(1 + 2), *after_tool_outputs(2)]
    assert "".join(seen["arguments"]) == arguments
    assert seen["rounds"] == ["requires_action", "completed"]
    assert seen["deltas"] == ["It is", " 22C."]
    assert seen["stored"] == "It is 22C."

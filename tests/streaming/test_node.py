"""Streaming through the official Node `openai` package (pinned in node/package.json).

The first run installs it with `npm ci` into tests/streaming/node/node_modules (git-ignored) and
later runs reuse it. No node or npm, or an install that fails, fails these tests: they are part
of the suite, not optional.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from openai.types.beta import Assistant

from tests.streaming.support import after_tool_outputs, function_call_run, text_run
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import LiveServer

NODE_DIR = Path(__file__).parent / "node"


def _pinned_version() -> str:
    return str(json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["openai"])


def _installed_version() -> str | None:
    manifest = NODE_DIR / "node_modules" / "openai" / "package.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text())["version"])


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, with the pinned `openai` package installed next to the script."""
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if node_bin is None or npm_bin is None:
        pytest.fail("node and npm are needed for the Node SDK streaming tests (Node.js >= 18)")
    if _installed_version() != _pinned_version():
        done = subprocess.run(
            [npm_bin, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0 or _installed_version() != _pinned_version():
            pytest.fail(f"npm ci failed in {NODE_DIR}:\n{done.stdout}\n{done.stderr}")
    return node_bin


def run_script(node: str, server: LiveServer, key: str, assistant_id: str, thread_id: str) -> Any:
    done = subprocess.run(
        [node, "script.mjs", f"{server.url}/v1", key, assistant_id, thread_id],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"node failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


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

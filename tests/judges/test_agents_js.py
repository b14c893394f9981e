"""The Agents SDK for JavaScript (npm `@openai/agents`) against a live assistantd, as
`tests/responses/test_agents_sdk.py` runs the Python one: `agents_js/agents.mjs` runs an agent with
a function tool plainly, streamed, with reasoning settings, and twice on an
`OpenAIConversationsSession`; the scripted model calls the tool, then answers. And the same agent
on a reasoning backend (`reasoning_content` in the stream): the reasoning comes back as items.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.judges.conftest import judge_env
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import LiveServer

SCRIPT = Path(__file__).resolve().parent / "agents_js" / "agents.mjs"


def weather(model: ScriptedModel, match: str, answer: str) -> None:
    model.script(
        match, Reply(tool_calls=[ToolCall("get_weather", '{"city": "Paris"}')]), Reply(text=answer)
    )


def roles(body: dict[str, Any]) -> list[tuple[str, str]]:
    """A chat request's messages as (role, text or call or result), the instructions left out."""
    out: list[tuple[str, str]] = []
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        if message["role"] in ("system", "developer"):
            continue
        if message["role"] == "tool":
            out.append(("tool", content))
            continue
        if content:
            out.append((message["role"], content))
        for call in message.get("tool_calls") or ():
            out.append(("call", f"{call['function']['name']}{call['function']['arguments']}"))
    return out


@pytest.fixture(scope="module")
def agents_js(npm_tools: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The script in a folder beside the installed SDK (node resolves packages from there)."""
    folder = tmp_path_factory.mktemp("agents-js")
    shutil.copy(SCRIPT, folder / SCRIPT.name)
    modules = npm_tools / "agents" / "node_modules"
    (folder / "node_modules").symlink_to(modules, target_is_directory=True)
    return folder / SCRIPT.name


def node(script: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        ["node", str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=judge_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return out


def test_agents_js(
    agents_js: Path, server: LiveServer, api_key: str, model: ScriptedModel, marker: str
) -> None:
    weather(model, f"{marker} tool:", "It is sunny in Paris.")
    weather(model, f"{marker} stream:", "It is sunny in Paris, streamed.")
    weather(model, f"{marker} reasoning:", "Sunny, briefly.")
    weather(model, f"{marker} session: weather", "Sunny in Paris.")
    model.script(f"{marker} session: and tomorrow?", Reply(text="Sunny again."))
    out = node(agents_js, f"{server.url}/v1", api_key, marker)

    tool = out["tool"]
    assert tool["final"] == "It is sunny in Paris."
    assert tool["calls"] == ["Paris"]
    assert len(tool["responses"]) == 2
    assert all(r.startswith("resp_") for r in tool["responses"])
    assert tool["usage"]["requests"] == 2
    assert tool["usage"]["inputTokens"] > 0
    first, second = model.requests(f"{marker} tool:")
    [declared] = first["tools"]
    assert declared["function"]["name"] == "get_weather"
    assert declared["function"]["parameters"]["properties"] == {"city": {"type": "string"}}
    question = f"{marker} tool: weather in Paris?"
    assert roles(first) == [("user", question)]
    assert roles(second) == [
        ("user", question),
        ("call", 'get_weather{"city": "Paris"}'),
        ("tool", "sunny in Paris"),
    ]

    stream = out["stream"]
    assert stream["final"] == "It is sunny in Paris, streamed."
    assert stream["text"] == stream["final"]
    assert stream["calls"] == ["Paris"]
    assert stream["types"].count("response.created") == 2, stream["types"]
    assert stream["types"].count("response.completed") == 2, stream["types"]
    assert "response.function_call_arguments.delta" in stream["types"]

    assert out["reasoning"] == {"final": "Sunny, briefly.", "calls": ["Paris"]}
    [sent, _] = model.requests(f"{marker} reasoning:")
    assert sent.get("reasoning_effort") == "low", sent

    session = out["session"]
    assert session["conversation"].startswith("conv_")
    assert session["finals"] == ["Sunny in Paris.", "Sunny again."]
    assert session["items"] == [
        "message",
        "function_call",
        "function_call_result",
        "message",
        "message",
        "message",
    ]
    [last] = model.requests(f"{marker} session: and tomorrow?")
    assert roles(last) == [
        ("user", f"{marker} session: weather in Paris?"),
        ("call", 'get_weather{"city": "Paris"}'),
        ("tool", "sunny in Paris"),
        ("assistant", "Sunny in Paris."),
        ("user", f"{marker} session: and tomorrow?"),
    ]


def test_agents_js_reasoning_backend(
    agents_js: Path, server: LiveServer, api_key: str, model: ScriptedModel, marker: str
) -> None:
    thinking: dict[str, Any] = {
        "reasoning": "The user wants the weather: call the tool.",
        "reasoning_tokens": 9,
    }
    model.script(
        f"{marker} think",
        Reply(tool_calls=[ToolCall("get_weather", '{"city": "Paris"}')], **thinking),
        Reply(text="Sunny, I reckon.", **thinking),
    )
    out = node(agents_js, f"{server.url}/v1", api_key, marker, "reasoning-backend")
    plain = out["plain"]
    assert plain["final"] == "Sunny, I reckon."
    assert plain["calls"] == ["Paris"]
    assert plain["outputs"] == [["reasoning", "function_call"], ["reasoning", "message"]]
    assert len(plain["reasoning"]) == 2
    assert "call the tool" in json.dumps(plain["reasoning"])
    assert plain["outputTokensDetails"] == [[{"reasoning_tokens": 9}], [{"reasoning_tokens": 9}]]
    streamed = out["streamed"]
    assert streamed["final"] == "Sunny, I reckon."
    assert "response.reasoning_text.delta" in streamed["types"]
    assert "response.reasoning_text.done" in streamed["types"]

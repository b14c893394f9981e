"""Codex CLI (npm `@openai/codex`), as its users configure it for a self-hosted provider, against a
live assistantd: a `[model_providers.assistantd]` block with `wire_api = "responses"`, default
config otherwise, no proxy; `codex exec` non-interactively (`--json` events on stdout).

Two models, because Codex sends two shapes of request (`tests/judges/test_codex_shape.py` pins
both against `/work/shared/reference/codex/`-style captures):
- `gpt-5.5`, a model of Codex's catalog: top-level `tools` (`exec_command` and the other function
  tools, a freeform `custom` `apply_patch` with a grammar, `tool_search`, `web_search`);
- Codex's own default when the config names no model (`gpt-6.2-sol` in 0.171): the tools come in an
  `additional_tools` input item of `namespace` tools, and the shell is reached through the
  `functions` namespace's freeform `exec` tool (JavaScript: `await tools.exec_command({...})`).

The scripted model answers; for the shell turns it calls the tool by the name assistantd offered
it (read from the request: how a namespaced or custom tool is named at a Chat Completions backend
is assistantd's choice), then answers once the tool output is back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backends.test_local import needs_model
from tests.judges.codex import DEFAULT, run_codex, write_config
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import LiveServer

MODELS = ["gpt-5.5", DEFAULT]


def tool_named(body: dict[str, Any], suffix: str) -> dict[str, Any]:
    """The function offered to the backend whose name is `suffix` or ends with it after a
    namespace separator (`functions.exec`, `functions__exec`, ...)."""
    functions = [tool["function"] for tool in body.get("tools") or ()]
    names = [fn["name"] for fn in functions]
    for fn in functions:
        name = fn["name"]
        if name == suffix or (name.endswith(suffix) and not name[-len(suffix) - 1].isalnum()):
            return dict(fn)
    raise AssertionError(f"no tool {suffix!r} offered to the backend: {names}")


def shell_call(model_name: str, command: str) -> Any:
    """The scripted model's first reply: run `command` with Codex's shell tool."""

    def reply(body: dict[str, Any]) -> Reply:
        if model_name != DEFAULT:
            tool = tool_named(body, "exec_command")
            return Reply(tool_calls=[ToolCall(tool["name"], json.dumps({"cmd": command}))])
        # the freeform `exec` tool of the `functions` namespace takes JavaScript
        tool = tool_named(body, "exec")
        source = f"await tools.exec_command({{cmd: {json.dumps(command)}}});\ntext('ran');"
        properties = list((tool.get("parameters") or {}).get("properties") or {})
        # a freeform tool offered as a function has one string parameter for its text
        assert len(properties) == 1, tool
        return Reply(tool_calls=[ToolCall(tool["name"], json.dumps({properties[0]: source}))])

    return reply


@pytest.fixture(params=MODELS)
def codex_model(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_plain_turn(
    codex: Path,
    codex_home: Path,
    codex_model: str,
    server: LiveServer,
    api_key: str,
    model: ScriptedModel,
    marker: str,
    tmp_path: Path,
) -> None:
    answer = f"Hello from assistantd {marker}."
    model.script(marker, Reply(text=answer))
    write_config(codex_home, f"{server.url}/v1", codex_model)
    run = run_codex(codex, codex_home, tmp_path, api_key, f"{marker} Say hello.")
    assert run.completed, run.explain()
    assert [item["text"] for item in run.of_type("agent_message")] == [answer]
    [sent] = model.requests(marker)
    assert sent["stream"] is True
    assert any(tool.get("function") for tool in sent.get("tools") or ()), sent.get("tools")


def test_shell_turn(
    codex: Path,
    codex_home: Path,
    codex_model: str,
    server: LiveServer,
    api_key: str,
    model: ScriptedModel,
    marker: str,
    tmp_path: Path,
) -> None:
    """The model runs `echo ... > hello.txt` through Codex's shell tool; Codex runs it, sends the
    output back, and the model's answer ends the turn."""
    command = f"echo {marker} > hello.txt"
    model.script(marker, shell_call(codex_model, command), Reply(text="Wrote hello.txt."))
    write_config(codex_home, f"{server.url}/v1", codex_model)
    run = run_codex(codex, codex_home, tmp_path, api_key, f"{marker} Write hello.txt.")
    assert run.completed, run.explain()
    assert (tmp_path / "hello.txt").read_text() == f"{marker}\n", run.explain()
    [execution] = run.of_type("command_execution")
    assert command in execution["command"]
    assert execution["exit_code"] == 0
    assert [item["text"] for item in run.of_type("agent_message")][-1] == "Wrote hello.txt."
    first, second, *_ = model.requests(marker)
    # the tool's output came back to the model, answering the call it made
    [call] = [m for m in second["messages"] if m.get("tool_calls")][0]["tool_calls"]
    results = [m for m in second["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in results] == [call["id"]]
    assert first["messages"][0]["role"] in ("system", "developer")


@pytest.fixture(scope="module")
def embedded_server(work_dir: Path, server_env: dict[str, str]) -> Iterator[LiveServer]:
    """assistantd with no backend: the embedded SmolLM2 serves every model name."""
    env = {
        **server_env,
        "ASSISTANTD_DATA_DIR": str(work_dir / "codex-embedded"),
        "ASSISTANTD_DATABASE_URL": f"sqlite+aiosqlite:///{work_dir / 'codex-embedded.db'}",
        "ASSISTANTD_MODEL_BASE_URL": "",
        "ASSISTANTD_LOCAL_MODEL_PARALLEL": "1",
        # Codex's first request is 9,000-15,000 tokens: more than SmolLM2's own 8,192
        "ASSISTANTD_LOCAL_MODEL_CONTEXT_WINDOW": "16384",
        # reading that prompt takes a 135M model on 2 cores more than the default 120 s: one
        # attempt, bounded by the test's own timeout
        "ASSISTANTD_MODEL_READ_TIMEOUT_SECONDS": "280",
        "ASSISTANTD_MODEL_MAX_RETRIES": "0",
        # a short answer: the judge is that the turn completes, not what a 135M model says
        "ASSISTANTD_LOCAL_MODEL_MAX_OUTPUT_TOKENS": "24",
    }
    live = LiveServer(env, work_dir / "codex-embedded.log").start()
    yield live
    live.stop()


@needs_model
def test_plain_turn_embedded_model(
    codex: Path, codex_home: Path, embedded_server: LiveServer, tmp_path: Path
) -> None:
    # gpt-5.5: Codex's smaller first request (38 KB; its default model's is 61 KB)
    write_config(codex_home, f"{embedded_server.url}/v1", "gpt-5.5")
    key = "sk-test-static"
    run = run_codex(codex, codex_home, tmp_path, key, "Say hello.", timeout=300)
    assert run.completed, run.explain()
    assert run.of_type("agent_message"), run.explain()

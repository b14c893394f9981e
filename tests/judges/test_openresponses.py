"""The Open Responses compliance suite (`bin/compliance-test.ts`, vendored in
`tests/judges/openresponses/`, see its README) run with bun against a live assistantd:
`bun run bin/compliance-test.ts -u URL/v1 -k KEY -m MODEL --json`, each of its tests (HTTP and
WebSocket) a test here, so a failure names the suite's test and carries its errors.

The scripted model answers every prompt of the suite with its echo, except the tool-calling
test's, which it answers with the `get_weather` call the suite expects.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _mint_key
from tests.judges.conftest import judge_env
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import LiveServer

SUITE = Path(__file__).resolve().parent / "openresponses"

# The suite's HTTP tests, each with what it waits for today.
HTTP_TESTS = {
    "basic-response": None,
    "assistant-phase": None,
    "response-output-phase-schema": None,
    "streaming-response": None,
    "system-prompt": None,
    "tool-calling": None,
    "image-input": None,
    "multi-turn": None,
    "compact-response": None,
    "compact-missing-model": None,
}
# Its WebSocket tests (`ws://.../v1/responses`, `responses/websocket.py`), likewise.
WEBSOCKET_TESTS = {
    "websocket-response": None,
    "websocket-sequential-responses": None,
    "websocket-continuation": None,
    "websocket-reconnect-store-false-recovery": None,
    "websocket-previous-response-not-found": None,
    "websocket-failed-continuation-evicts-cache": None,
    "websocket-compact-new-chain": None,
}
ALL_TESTS = {**HTTP_TESTS, **WEBSOCKET_TESTS}


@pytest.fixture(scope="module")
def suite(npm_tools: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(bun, a copy of the vendored suite with the installed zod beside it)."""
    copy = tmp_path_factory.mktemp("openresponses") / "suite"
    shutil.copytree(SUITE, copy)
    modules = npm_tools / "openresponses" / "node_modules"
    (copy / "node_modules").symlink_to(modules, target_is_directory=True)
    return modules / ".bin" / "bun", copy


def bun(suite: tuple[Path, Path], *args: str, timeout: float = 300) -> str:
    binary, folder = suite
    done = subprocess.run(
        [str(binary), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=judge_env(),
        check=False,
    )
    assert done.stdout.strip(), f"bun {args} printed nothing: {done.stderr}"
    return done.stdout


def test_the_suite_has_the_tests_we_run(suite: tuple[Path, Path]) -> None:
    listing = bun(
        suite,
        "-e",
        'import { testTemplates } from "./src/lib/compliance-tests";'
        'console.log(JSON.stringify(testTemplates.map((t) => [t.id, t.transport ?? "http"])));',
    )
    tests = dict(json.loads(listing))
    assert {name for name, kind in tests.items() if kind == "http"} == set(HTTP_TESTS)
    assert {name for name, kind in tests.items() if kind == "websocket"} == set(WEBSOCKET_TESTS)


@pytest.fixture(scope="module")
def results(
    suite: tuple[Path, Path], server: LiveServer, server_env: dict[str, str], model: ScriptedModel
) -> dict[str, dict[str, Any]]:
    """The suite's tests, run once against the server (a project of their own): its JSON
    results by test id."""
    key = _mint_key(
        server_env["ASSISTANTD_DATABASE_URL"], server_env["ASSISTANTD_DATA_DIR"], "openresponses"
    )
    model.script(
        "What's the weather like in San Francisco?",
        Reply(tool_calls=[ToolCall("get_weather", '{"location": "San Francisco, CA"}')]),
    )
    output = bun(
        suite,
        "run",
        "bin/compliance-test.ts",
        "-u",
        f"{server.url}/v1",
        "-k",
        key,
        "-m",
        "gpt-4o",
        "--filter",
        ",".join(ALL_TESTS),
        "--json",
    )
    report = json.loads(output)
    return {result["id"]: result for result in report["results"]}


@pytest.mark.parametrize(
    "test_id",
    [pytest.param(name, marks=[mark] if mark else []) for name, mark in ALL_TESTS.items()],
)
def test_compliance(results: dict[str, dict[str, Any]], test_id: str) -> None:
    result = results[test_id]
    assert result["status"] == "passed", (
        f"{result['name']}: {result['status']}\n"
        + "\n".join(f"- {error}" for error in result.get("errors") or ())
        + f"\nresponse: {json.dumps(result.get('response'))[:2000]}"
    )

"""What Codex CLI sends to a custom Responses provider: its first request, captured by a stub
provider that records it and answers 400 (as `/work/shared/reference/codex/` was captured), so
that a new Codex release that changes its requests shows up here, beside the turns of
`test_codex.py` that this shape is served by.

- `gpt-5.5` (a catalog model) sends what the reference's `codex_request_gpt-5.5.json` holds.
- With no model in the config Codex 0.171 picks `gpt-6.2-sol` and sends the "responses-lite"
  shape the reference does not have: no top-level `tools`; its tools come first in `input`, an
  `additional_tools` item (role `developer`) of `namespace` tools, the shell reached through the
  `functions` namespace's freeform `exec` tool (JavaScript, a lark grammar); `reasoning.context`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.judges.codex import DEFAULT, run_codex, write_config


class Capture:
    """A provider that records each request (path, headers, JSON body) and refuses it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        seen = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                seen.append(
                    {
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": json.loads(raw),
                    }
                )
                error = {"message": "captured", "type": "invalid_request_error"}
                payload = json.dumps({"error": {**error, "param": None, "code": None}}).encode()
                self.send_response(400)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Capture:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def capture() -> Iterator[Capture]:
    with Capture() as stub:
        yield stub


def first_request(
    codex: Path, codex_home: Path, capture: Capture, model: str, tmp_path: Path
) -> dict[str, Any]:
    write_config(codex_home, capture.url, model)
    run = run_codex(codex, codex_home, tmp_path, "sk-capture", "Say hello.", timeout=60)
    assert not run.completed
    assert capture.requests, run.explain()
    request = capture.requests[0]
    assert request["path"] == "/v1/responses"
    assert request["headers"]["authorization"] == "Bearer sk-capture"
    assert request["headers"]["accept"] == "text/event-stream"
    assert "content-encoding" not in request["headers"]  # bodies are not compressed
    assert request["headers"]["x-codex-beta-features"] == "remote_compaction_v2"
    body: dict[str, Any] = request["body"]
    assert body["stream"] is True
    assert body["store"] is False
    assert body["include"] == ["reasoning.encrypted_content"]
    assert set(body["client_metadata"]) >= {"session_id", "thread_id", "turn_id"}
    assert body["input"][-1] == {
        "type": "message",
        "id": body["input"][-1]["id"],
        "role": "user",
        "content": [{"type": "input_text", "text": "Say hello."}],
    }
    return body


def tool_types(tools: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(tool["type"], tool.get("name")) for tool in tools]


def test_catalog_model_sends_the_referenced_shape(
    codex: Path, codex_home: Path, capture: Capture, tmp_path: Path
) -> None:
    body = first_request(codex, codex_home, capture, "gpt-5.5", tmp_path)
    assert sorted(body) == [
        "client_metadata",
        "include",
        "input",
        "model",
        "parallel_tool_calls",
        "prompt_cache_key",
        "reasoning",
        "store",
        "stream",
        "text",
        "tool_choice",
        "tools",
    ]
    assert body["reasoning"] == {"effort": "medium"}
    assert body["text"] == {"verbosity": "low"}
    assert tool_types(body["tools"]) == [
        ("function", "exec_command"),
        ("function", "write_stdin"),
        ("function", "request_user_input"),
        ("custom", "apply_patch"),
        ("function", "view_image"),
        ("function", "get_goal"),
        ("function", "create_goal"),
        ("function", "update_goal"),
        ("tool_search", None),
        ("web_search", None),
    ]
    [apply_patch] = [tool for tool in body["tools"] if tool["type"] == "custom"]
    assert apply_patch["format"]["type"] == "grammar"
    assert apply_patch["format"]["syntax"] == "lark"
    assert {item["type"] for item in body["input"]} == {"message"}


def test_default_model_sends_additional_tools(
    codex: Path, codex_home: Path, capture: Capture, tmp_path: Path
) -> None:
    body = first_request(codex, codex_home, capture, DEFAULT, tmp_path)
    assert body["model"] == "gpt-6.2-sol"
    assert "tools" not in body
    assert body["reasoning"] == {"effort": "low", "context": "all_turns"}
    headers = capture.requests[0]["headers"]
    assert headers["x-openai-internal-codex-responses-lite"] == "true"
    extra = body["input"][0]
    assert (extra["type"], extra["role"]) == ("additional_tools", "developer")
    assert tool_types(extra["tools"]) == [
        ("namespace", "functions"),
        ("namespace", "clock"),
        ("namespace", "collaboration"),
    ]
    functions = extra["tools"][0]["tools"]
    assert tool_types(functions)[0] == ("custom", "exec")
    assert functions[0]["format"]["syntax"] == "lark"
    assert "tools.exec_command" in functions[0]["description"]
    assert {item["type"] for item in body["input"][1:]} == {"message"}

"""Helpers for the Responses contract tests."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
import pytest
from openai import OpenAI
from openai.types.responses import Response

from tests.runs.conftest import tuned_server, wait_until

__all__ = ["tuned_server"]  # a fixture the PostgreSQL recovery tests use

RESPONSE_KEYS = [
    "id",
    "object",
    "created_at",
    "status",
    "completed_at",
    "background",
    "conversation",
    "error",
    "frequency_penalty",
    "incomplete_details",
    "instructions",
    "max_output_tokens",
    "max_tool_calls",
    "model",
    "output",
    "parallel_tool_calls",
    "presence_penalty",
    "previous_response_id",
    "prompt_cache_key",
    "prompt_cache_retention",
    "reasoning",
    "safety_identifier",
    "service_tier",
    "store",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "truncation",
    "usage",
    "user",
    "metadata",
]


@pytest.fixture
def marker() -> str:
    """A token unique to this test: put it in the input, script the model for it."""
    return f"mk-{secrets.token_hex(6)}"


def weather_tool(name: str = "get_weather") -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }


def wait_response(client: OpenAI, response_id: str, *, timeout: float = 15.0) -> Response:
    return wait_until(
        lambda: client.responses.retrieve(response_id),
        lambda r: r.status not in ("queued", "in_progress"),
        timeout=timeout,
        what=f"response {response_id} to finish",
    )


def raw_events(
    client: OpenAI, path: str, *, params: dict[str, Any] | None = None, body: Any = None
) -> list[dict[str, Any]]:
    """The SSE events of a request (POST with `body`, else GET), each frame's `event:` name
    checked against its data's `type`; there is no `[DONE]`."""
    url = f"{client.base_url}{path.lstrip('/')}"
    headers = {"Authorization": f"Bearer {client.api_key}"}
    events: list[dict[str, Any]] = []
    method = "POST" if body is not None else "GET"
    with httpx.stream(method, url, headers=headers, json=body, params=params, timeout=30) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in answer.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                assert line != "data: [DONE]"
                data = json.loads(line[len("data: ") :])
                assert data["type"] == name
                events.append(data)
    return events

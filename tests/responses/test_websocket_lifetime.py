"""A Responses WebSocket lasts `ASSISTANTD_WEBSOCKET_MAX_SECONDS` (OpenAI's: 60 minutes): then,
between responses (a running one is never cut), OpenAI's `websocket_connection_limit_reached`
error event, and a clean close."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from openai.resources.responses.responses import ResponsesConnection
from websockets.exceptions import ConnectionClosedOK

from tests.runs.conftest import Tuned
from tests.support import strict_types as strict
from tests.support.scripted_model import Reply, ScriptedModel

LIMIT_SECONDS = 1.5


@pytest.fixture(scope="module")
def tuned(tuned_server: Callable[..., Tuned]) -> Tuned:
    return tuned_server({"ASSISTANTD_WEBSOCKET_MAX_SECONDS": str(LIMIT_SECONDS)})


def _receive(connection: ResponsesConnection) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(connection.recv_bytes())
    strict.socket_event(data)
    return data


def _expired(connection: ResponsesConnection) -> None:
    event = _receive(connection)
    assert event["type"] == "error", event
    assert event["status"] == 400
    assert event["error"]["type"] == "invalid_request_error"
    assert event["error"]["code"] == "websocket_connection_limit_reached"
    assert "(1.5 seconds)" in event["error"]["message"]
    assert "stream_id" not in event  # the connection's, no request's
    with pytest.raises(ConnectionClosedOK):
        connection.recv_bytes()


def test_an_idle_connection_is_closed_at_its_limit(tuned: Tuned) -> None:
    with tuned.client.responses.connect() as connection:
        _expired(connection)


def test_a_running_response_is_not_cut_by_the_limit(
    tuned: Tuned, model: ScriptedModel, marker: str
) -> None:
    model.script(marker, Reply(text="slow answer", delay=LIMIT_SECONDS + 1))
    with tuned.client.responses.connect() as connection:
        connection.send(
            {"type": "response.create", "model": "scripted", "input": marker, "store": False}
        )
        events = []
        while not events or events[-1]["type"] != "response.completed":
            events.append(_receive(connection))
            assert events[-1]["type"] != "error", events[-1]
        assert events[-1]["response"]["output"][0]["content"][0]["text"] == "slow answer"
        _expired(connection)

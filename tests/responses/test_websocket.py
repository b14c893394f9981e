"""WebSocket mode (`client.responses.connect()`): responses one after another on one connection,
unstored chains kept by the connection, tool round trips, steering, error events, auth at the
upgrade. Every event is parsed strictly with the SDK's own server-event types."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import AzureOpenAI, OpenAI
from openai.resources.responses.responses import ResponsesConnection
from openai.types.responses import ResponseSteerRequiredInput
from pydantic import TypeAdapter
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from assistantd.responses.steering import required_stub
from tests.responses.conftest import weather_tool
from tests.runs.conftest import wait_until
from tests.support import strict_types as strict
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall

ENDS = frozenset({"response.completed", "response.failed", "response.incomplete"})


@pytest.fixture
def socket(client: OpenAI) -> Iterator[ResponsesConnection]:
    with client.responses.connect() as connection:
        yield connection


def receive(connection: ResponsesConnection) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(connection.recv_bytes())
    strict.socket_event(data)
    return data


def turn(connection: ResponsesConnection, request: dict[str, Any]) -> list[dict[str, Any]]:
    """Send a `response.create`; its events through the terminal one (or an `error`)."""
    connection.send({"type": "response.create", **request})  # type: ignore[arg-type, typeddict-item]
    return until_end(connection)


def until_end(connection: ResponsesConnection) -> list[dict[str, Any]]:
    events = []
    while True:
        event = receive(connection)
        events.append(event)
        if event["type"] in ENDS or event["type"] == "error":
            return events


def final(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert events[-1]["type"] == "response.completed", events[-1]
    return events[-1]["response"]  # parsed strictly with its event (`receive`)


def text_of(response: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
    )


class TestResponses:
    def test_events_as_over_http(
        self, client: OpenAI, socket: ResponsesConnection, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text=["Hel", "lo"]))
        events = turn(socket, {"model": "gpt-4o", "input": marker})
        assert [e["type"] for e in events] == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        response = final(events)
        assert text_of(response) == "Hello"
        # stored by default, as over HTTP
        assert client.responses.retrieve(response["id"]).output_text == "Hello"

    def test_several_on_one_connection(
        self, socket: ResponsesConnection, model: ScriptedModel, marker: str
    ) -> None:
        ids = []
        for n in range(3):
            model.script(f"{marker}-{n}", Reply(text=f"answer {n}"))
            response = final(
                turn(socket, {"model": "gpt-4o", "input": f"{marker}-{n}", "store": False})
            )
            assert text_of(response) == f"answer {n}"
            ids.append(response["id"])
        assert len(set(ids)) == 3

    def test_lane_echoed(
        self, socket: ResponsesConnection, model: ScriptedModel, marker: str
    ) -> None:
        events = turn(socket, {"model": "gpt-4o", "input": marker, "stream_id": "lane-a"})
        assert {e.get("stream_id") for e in events} == {"lane-a"}
        final(events)

    def test_azure_prefixes(
        self, azure_client: AzureOpenAI, server: Any, api_key: str, marker: str
    ) -> None:
        with azure_client.responses.connect() as connection:
            final(turn(connection, {"model": "gpt-4o", "input": marker}))
        base = f"{server.url}/openai/v1".replace("http", "ws", 1)
        with (
            OpenAI(api_key=api_key, base_url=base.replace("ws", "http", 1)) as azure_v1,
            azure_v1.responses.connect() as connection,
        ):
            final(turn(connection, {"model": "gpt-4o", "input": marker}))


class TestUnstoredChain:
    def test_previous_response_from_the_connection(
        self,
        client: OpenAI,
        socket: ResponsesConnection,
        model: ScriptedModel,
        marker: str,
    ) -> None:
        model.script(marker, Reply(text="OK, cobalt."), Reply(text="cobalt"), Reply(text="still"))
        first = final(
            turn(socket, {"model": "gpt-4o", "input": f"{marker} remember", "store": False})
        )
        second = final(
            turn(
                socket,
                {
                    "model": "gpt-4o",
                    "input": f"{marker} which word?",
                    "previous_response_id": first["id"],
                    "store": False,
                },
            )
        )
        assert second["previous_response_id"] == first["id"]
        third = final(
            turn(
                socket,
                {
                    "model": "gpt-4o",
                    "input": f"{marker} again?",
                    "previous_response_id": second["id"],
                    "store": False,
                },
            )
        )
        assert third["previous_response_id"] == second["id"]
        seen = model.requests(f"{marker} again?")[-1]["messages"]
        assert [(m["role"], m["content"]) for m in seen] == [
            ("user", f"{marker} remember"),
            ("assistant", "OK, cobalt."),
            ("user", f"{marker} which word?"),
            ("assistant", "cobalt"),
            ("user", f"{marker} again?"),
        ]
        # unstored: gone from the database once it ended; only its connection knows it
        for response in (first, second):
            with pytest.raises(openai.NotFoundError):
                client.responses.retrieve(response["id"])

        def try_over_http() -> Any:
            try:
                return client.responses.create(
                    model="gpt-4o", input="x", previous_response_id=third["id"], store=False
                )
            except openai.BadRequestError as exc:
                return exc

        refused = wait_until(
            try_over_http,
            lambda r: isinstance(r, openai.BadRequestError),
            what="the unstored response to be removed",
        )
        assert refused.code == "previous_response_not_found"

    def test_unstored_after_a_stored_response(
        self, socket: ResponsesConnection, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="one"), Reply(text="two"), Reply(text="three"))
        stored = final(turn(socket, {"model": "gpt-4o", "input": f"{marker} a"}))
        later = {"model": "gpt-4o", "store": False}
        second = final(
            turn(socket, {**later, "input": f"{marker} b", "previous_response_id": stored["id"]})
        )
        third = final(
            turn(socket, {**later, "input": f"{marker} c", "previous_response_id": second["id"]})
        )
        assert (second["previous_response_id"], third["previous_response_id"]) == (
            stored["id"],
            second["id"],
        )
        seen = model.requests(f"{marker} c")[-1]["messages"]
        assert [(m["role"], m["content"]) for m in seen] == [
            ("user", f"{marker} a"),
            ("assistant", "one"),
            ("user", f"{marker} b"),
            ("assistant", "two"),
            ("user", f"{marker} c"),
        ]

    def test_not_on_another_connection(
        self, client: OpenAI, socket: ResponsesConnection, marker: str
    ) -> None:
        first = final(turn(socket, {"model": "gpt-4o", "input": marker, "store": False}))
        with client.responses.connect() as other:
            events = turn(
                other,
                {"model": "gpt-4o", "input": "next", "previous_response_id": first["id"]},
            )
        assert len(events) == 1
        assert events[0]["status"] == 400
        assert events[0]["error"]["code"] == "previous_response_not_found"
        assert events[0]["error"]["param"] == "previous_response_id"

    def test_failed_continuation_forgets(self, socket: ResponsesConnection, marker: str) -> None:
        first = final(turn(socket, {"model": "gpt-4o", "input": marker, "store": False}))
        later = {"model": "gpt-4o", "previous_response_id": first["id"], "store": False}
        output = {"type": "function_call_output", "call_id": "call_nope", "output": "x"}
        failed = turn(socket, {**later, "input": [output]})
        assert [e["type"] for e in failed] == ["error"]
        assert failed[0]["error"]["param"] == "input"
        again = turn(socket, {**later, "input": "more"})
        assert again[0]["error"]["code"] == "previous_response_not_found"

    def test_function_call_round_trip(
        self, socket: ResponsesConnection, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(tool_calls=[ToolCall("get_weather", '{"city": "Oslo"}')]))
        tools = [weather_tool()]
        first = final(
            turn(socket, {"model": "gpt-4o", "input": marker, "tools": tools, "store": False})
        )
        (call,) = first["output"]
        assert call["type"] == "function_call"
        output = {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
        model.script("sunny", Reply(text="It is sunny in Oslo."))
        second = final(
            turn(
                socket,
                {
                    "model": "gpt-4o",
                    "input": [output],
                    "tools": tools,
                    "previous_response_id": first["id"],
                    "store": False,
                },
            )
        )
        assert text_of(second) == "It is sunny in Oslo."
        seen = model.requests("sunny")[-1]["messages"]
        assert seen[-2]["tool_calls"][0]["id"] == call["call_id"]
        assert seen[-1] == {"role": "tool", "tool_call_id": call["call_id"], "content": "sunny"}

    def test_custom_tool_round_trip(
        self, socket: ResponsesConnection, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(tool_calls=[ToolCall("note", '{"input": "buy milk"}')]))
        tools = [{"type": "custom", "name": "note", "description": "Write a note."}]
        request = {"model": "gpt-4o", "tools": tools, "store": False}
        first = final(turn(socket, {**request, "input": marker}))
        (call,) = first["output"]
        assert (call["type"], call["input"]) == ("custom_tool_call", "buy milk")
        output = {"type": "custom_tool_call_output", "call_id": call["call_id"], "output": "kept"}
        model.script("kept", Reply(text="Noted."))
        second = final(
            turn(socket, {**request, "input": [output], "previous_response_id": first["id"]})
        )
        assert text_of(second) == "Noted."
        seen = model.requests("kept")[-1]["messages"]
        assert seen[-1] == {"role": "tool", "tool_call_id": call["call_id"], "content": "kept"}


class TestSteer:
    def test_successor_with_the_steering_input(
        self, socket: ResponsesConnection, model: ScriptedModel, marker: str
    ) -> None:
        model.script(
            marker, Reply(text=["a", "b", "c", "d"], chunk_delay=0.3), Reply(text="shorter")
        )
        socket.send({"type": "response.create", "model": "gpt-4o", "input": marker})  # type: ignore[arg-type, typeddict-item]
        created = receive(socket)
        assert created["type"] == "response.created"
        target = created["response"]["id"]
        socket.send(
            {"type": "response.steer", "previous_response_id": target, "input": f"{marker} shorter"}
        )
        events = until_end(socket)
        accepted = [e for e in events if e["type"] == "response.steer.accepted"]
        assert len(accepted) == 1
        assert accepted[0]["steer"]["previous_response_id"] == target
        assert accepted[0]["steer"]["id"].startswith("steer_")
        assert final(events)["id"] == target
        successor = until_end(socket)
        assert successor[0]["type"] == "response.created"
        follow = final(successor)
        assert follow["previous_response_id"] == target
        assert text_of(follow) == "shorter"
        seen = model.requests(f"{marker} shorter")[-1]["messages"]
        assert [(m["role"], m["content"]) for m in seen] == [
            ("user", marker),
            ("assistant", "abcd"),
            ("user", f"{marker} shorter"),
        ]
        # a finished response takes no more steering
        socket.send({"type": "response.steer", "previous_response_id": target, "input": "more"})
        late = receive(socket)
        assert late["type"] == "response.steer.failed"
        assert late["error"]["code"] == "response_already_completed"
        assert late["steer"] == {"previous_response_id": target, "input": "more"}

    def test_pending_while_a_tool_output_is_needed(
        self, socket: ResponsesConnection, model: ScriptedModel, marker: str
    ) -> None:
        model.script(
            marker,
            Reply(tool_calls=[ToolCall("get_weather", '{"city": "Oslo"}')], delay=0.5),
        )
        tools = [weather_tool()]
        request = {"model": "gpt-4o", "input": marker, "tools": tools, "store": False}
        socket.send({"type": "response.create", **request})  # type: ignore[arg-type, typeddict-item]
        created = receive(socket)
        target = created["response"]["id"]
        socket.send(
            {"type": "response.steer", "previous_response_id": target, "input": f"{marker} metric"}
        )
        first = final(until_end(socket))
        pending = receive(socket)
        assert pending["type"] == "response.steer.pending"
        assert pending["reason"] == "waiting_for_required_input"
        call = first["output"][0]
        assert pending["required_input"] == [
            {"type": "function_call_output", "call_id": call["call_id"], "name": "get_weather"}
        ]
        output = {"type": "function_call_output", "call_id": call["call_id"], "output": "6C"}
        model.script("6C", Reply(text="Six degrees."))
        final(
            turn(
                socket,
                {**request, "input": [output], "previous_response_id": target},
            )
        )
        # queued before the tool output in the input; the model gets the output next to its
        # call, as a backend requires
        seen = model.requests("6C")[-1]["messages"]
        assert seen[-2:] == [
            {"role": "tool", "tool_call_id": call["call_id"], "content": "6C"},
            {"role": "user", "content": f"{marker} metric"},
        ]

    def test_unknown_response(self, socket: ResponsesConnection) -> None:
        socket.send({"type": "response.steer", "previous_response_id": "resp_x", "input": "hi"})
        failed = receive(socket)
        assert failed["type"] == "response.steer.failed"
        assert failed["error"]["code"] == "response_not_found"
        assert "id" not in failed["steer"]


class TestBadMessages:
    @pytest.mark.parametrize(
        ("raw", "code", "param"),
        [
            ("not json", "invalid_json", None),
            ("[1, 2]", "invalid_type", None),
            ('{"type": "response.cancel"}', "invalid_value", "type"),
            ('{"input": "no type"}', "missing_required_parameter", "type"),
            (
                '{"type": "response.create", "model": "gpt-4o", "input": "x", "background": true}',
                "unsupported_parameter",
                "background",
            ),
            ('{"type": "response.create", "model": "gpt-4o", "input": 5}', "invalid_type", "input"),
            ('{"type": "response.create", "input": "x", "nope": 1}', "unknown_parameter", "nope"),
            ('{"type": "response.create", "input": "a\\u0000b"}', "invalid_value", "input"),
            ("[" * 200 + "]" * 200, "invalid_value", "[0]" * 100),
            pytest.param(
                '{"type": "response.create", "input": [{"role": "user", "content": ['
                + ",".join(['{"type": "input_text", "text": "p"}'] * 20_000)
                + "]}]}",
                "array_above_max_length",
                "input[0].content",
                id="20k-parts",
            ),
        ],
    )
    def test_error_event_then_usable(
        self,
        socket: ResponsesConnection,
        marker: str,
        raw: str,
        code: str,
        param: str | None,
    ) -> None:
        socket.send_raw(raw)
        error = receive(socket)
        assert error["type"] == "error"
        assert error["status"] == 400
        assert error["error"]["code"] == code
        assert error["error"]["param"] == param
        assert error["error"]["type"] == "invalid_request_error"
        final(turn(socket, {"model": "gpt-4o", "input": marker}))


class TestAuth:
    def test_bad_key_refused_at_the_upgrade(self, server: Any) -> None:
        with (
            OpenAI(api_key="sk-wrong", base_url=f"{server.url}/v1") as client,
            pytest.raises(InvalidStatus) as refused,
        ):
            client.responses.connect().enter()
        assert refused.value.response.status_code == 401
        body = json.loads(refused.value.response.body or b"{}")
        assert body["error"]["code"] == "invalid_api_key"

    def test_azure_route_needs_its_api_version(self, server: Any, api_key: str) -> None:
        url = f"{server.url}/openai/responses".replace("http", "ws", 1)
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(url, additional_headers={"api-key": api_key}).close()
        assert refused.value.response.status_code == 404

    def test_either_header(self, server: Any, api_key: str, marker: str) -> None:
        with (
            OpenAI(api_key="placeholder", base_url=f"{server.url}/v1") as client,
            client.responses.connect(extra_headers={"api-key": api_key}) as connection,
        ):
            final(turn(connection, {"model": "gpt-4o", "input": marker}))

    def test_plain_get_is_no_upgrade(self, client: OpenAI) -> None:
        answer = httpx.get(
            f"{client.base_url}responses", headers={"Authorization": f"Bearer {client.api_key}"}
        )
        assert answer.status_code == 405


@pytest.mark.parametrize(
    ("item", "stub"),
    [
        (
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "name": "f"},
        ),
        (
            {"type": "custom_tool_call", "call_id": "c2", "name": "n", "input": "x"},
            {"type": "custom_tool_call_output", "call_id": "c2"},
        ),
        ({"type": "shell_call", "call_id": "c3"}, {"type": "shell_call_output", "call_id": "c3"}),
        (
            {"type": "apply_patch_call", "call_id": "c4"},
            {"type": "apply_patch_call_output", "call_id": "c4"},
        ),
        (
            {"type": "tool_search_call", "call_id": "c5", "execution": "client"},
            {"type": "tool_search_output", "call_id": "c5", "execution": "client"},
        ),
        ({"type": "message", "role": "assistant", "content": []}, None),
    ],
)
def test_required_input_stubs(item: dict[str, Any], stub: dict[str, Any] | None) -> None:
    """What `response.steer.pending` asks for, in the SDK's own stub types."""
    assert required_stub(item) == stub
    if stub is not None:
        parsed = TypeAdapter(ResponseSteerRequiredInput).validate_python(stub)
        assert parsed.model_dump(exclude_unset=True) == stub

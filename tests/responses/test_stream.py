"""Streaming: the event vocabulary and order, sequence numbers, the SDK's stream helper, and
re-attaching to a response's events."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from openai import OpenAI

from tests.responses.conftest import raw_events, wait_response, weather_tool
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def check_numbering(events: list[dict[str, Any]]) -> None:
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


class TestTextStream:
    def test_event_order(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text=["Hel", "lo ", "world"]))
        events = raw_events(
            client, "responses", body={"model": "gpt-4o", "input": marker, "stream": True}
        )
        check_numbering(events)
        assert names(events) == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
        created, completed = events[0]["response"], events[-1]["response"]
        assert created["status"] in ("queued", "in_progress")
        assert created["output"] == []
        assert created["usage"] is None
        assert created["id"] == completed["id"]
        item_id = events[2]["item"]["id"]
        assert events[2]["item"] == {
            "id": item_id,
            "type": "message",
            "status": "in_progress",
            "content": [],
            "role": "assistant",
        }
        deltas = [e for e in events if e["type"] == "response.output_text.delta"]
        assert "".join(e["delta"] for e in deltas) == "Hello world"
        for event in events[3:10]:
            assert (
                event["item_id"] == item_id
                if "item_id" in event
                else event["item"]["id"] == item_id
            )
            assert event["output_index"] == 0
        assert all(e["content_index"] == 0 and e["logprobs"] == [] for e in deltas)
        assert all(e["obfuscation"] for e in deltas)
        assert events[7]["text"] == "Hello world"
        assert events[8]["part"] == {
            "type": "output_text",
            "annotations": [],
            "logprobs": [],
            "text": "Hello world",
        }
        assert events[9]["item"]["status"] == "completed"
        assert completed["status"] == "completed"
        assert completed["output"] == [events[9]["item"]]
        assert completed["usage"]["total_tokens"] > 0

    def test_without_obfuscation(self, client: OpenAI, marker: str) -> None:
        body = {
            "model": "gpt-4o",
            "input": marker,
            "stream": True,
            "stream_options": {"include_obfuscation": False},
        }
        events = raw_events(client, "responses", body=body)
        deltas = [e for e in events if e["type"] == "response.output_text.delta"]
        assert deltas
        assert all("obfuscation" not in e for e in deltas)

    def test_the_sdk_stream_helper(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text=["One ", "two ", "three."]))
        seen: list[str] = []
        with client.responses.stream(model="gpt-4o", input=marker) as stream:
            for event in stream:
                if event.type == "response.output_text.delta":
                    seen.append(event.delta)
            final = stream.get_final_response()
        assert "".join(seen) == "One two three."
        assert final.output_text == "One two three."
        assert final.status == "completed"
        assert client.responses.retrieve(final.id).output_text == "One two three."

    def test_the_stream_helper_with_a_function_call(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(
            marker,
            Reply(text="Let me check.", tool_calls=[ToolCall("get_weather", '{"city": "Oslo"}')]),
        )
        with client.responses.stream(
            model="gpt-4o", input=marker, tools=[weather_tool()]
        ) as stream:
            arguments = [
                e.delta for e in stream if e.type == "response.function_call_arguments.delta"
            ]
            final = stream.get_final_response()
        assert "".join(arguments) == '{"city": "Oslo"}'
        assert [item.type for item in final.output] == ["message", "function_call"]
        assert final.output_text == "Let me check."

    def test_events_go_out_as_the_model_answers(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        """Nothing waits for the response's end: each chunk's event is sent when it comes."""
        model.script(marker, Reply(reasoning=["Thinking", "..."], text=["a", "b"], chunk_delay=0.4))
        url = f"{client.base_url}responses"
        headers = {"Authorization": f"Bearer {client.api_key}"}
        body = {"model": "gpt-4o", "input": marker, "stream": True}
        arrived: dict[str, float] = {}
        started = time.monotonic()
        with httpx.stream("POST", url, headers=headers, json=body, timeout=30) as answer:
            for line in answer.iter_lines():
                if line.startswith("data: "):
                    kind = json.loads(line[len("data: ") :])["type"]
                    arrived.setdefault(kind, time.monotonic() - started)
        # the model's chunks come 0.4 s apart: two of reasoning, then two of text
        assert arrived["response.created"] < 0.3, arrived
        assert 0.4 <= arrived["response.reasoning_text.delta"] < 0.7, arrived
        assert 1.2 <= arrived["response.output_text.delta"] < 1.5, arrived
        assert arrived["response.completed"] >= 1.6, arrived


class TestFunctionCallStream:
    def test_event_order(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(
            marker,
            Reply(
                tool_calls=[
                    ToolCall("get_weather", '{"city": "Oslo"}'),
                    ToolCall("get_weather", '{"city": "Rome"}'),
                ]
            ),
        )
        body = {"model": "gpt-4o", "input": marker, "stream": True, "tools": [weather_tool()]}
        events = raw_events(client, "responses", body=body)
        check_numbering(events)
        kinds = names(events)
        assert kinds[:2] == ["response.created", "response.in_progress"]
        assert kinds[-1] == "response.completed"
        added = [e for e in events if e["type"] == "response.output_item.added"]
        assert [e["output_index"] for e in added] == [0, 1]
        for event in added:
            item = event["item"]
            assert item["type"] == "function_call"
            assert item["arguments"] == ""
            assert item["status"] == "in_progress"
            assert item["call_id"].startswith("call_")
            assert item["name"] == "get_weather"
        for index, city in ((0, "Oslo"), (1, "Rome")):
            item_id = added[index]["item"]["id"]
            deltas = [
                e["delta"]
                for e in events
                if e["type"] == "response.function_call_arguments.delta" and e["item_id"] == item_id
            ]
            assert "".join(deltas) == f'{{"city": "{city}"}}'
            [done] = [
                e
                for e in events
                if e["type"] == "response.function_call_arguments.done" and e["item_id"] == item_id
            ]
            assert done["arguments"] == f'{{"city": "{city}"}}'
            assert done["name"] == "get_weather"
            assert done["output_index"] == index
        item_done = [e for e in events if e["type"] == "response.output_item.done"]
        assert [e["item"]["status"] for e in item_done] == ["completed", "completed"]
        assert events[-1]["response"]["output"] == [e["item"] for e in item_done]


class TestReattach:
    def test_replay_from_the_start_and_after_n(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text=["a", "b", "c"]))
        first = raw_events(
            client, "responses", body={"model": "gpt-4o", "input": marker, "stream": True}
        )
        response_id = first[0]["response"]["id"]
        replay = raw_events(client, f"responses/{response_id}", params={"stream": "true"})
        assert replay == first
        later = raw_events(
            client, f"responses/{response_id}", params={"stream": "true", "starting_after": 4}
        )
        assert later == first[5:]

    def test_attach_while_it_runs(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text=[f"w{i} " for i in range(30)], chunk_delay=0.03))
        response = client.responses.create(
            model="gpt-4o", input=marker, background=True, stream=False
        )
        events = raw_events(client, f"responses/{response.id}", params={"stream": "true"})
        check_numbering(events)
        assert events[0]["type"] == "response.created"
        assert events[-1]["type"] == "response.completed"
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        assert text == "".join(f"w{i} " for i in range(30))

    def test_a_response_nobody_streams_sends_its_text_gathered(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        """Created without `stream`, its text goes out in a delta event per 50 ms at most
        (one, for an answer that comes at once), not one per chunk; the deltas still add up
        to the text, and a streamed response keeps one per chunk."""
        chunks = [f"t{i} " for i in range(40)]
        model.script(marker, Reply(text=chunks))
        response = client.responses.create(model="gpt-4o", input=marker, background=True)
        assert wait_response(client, response.id).output_text == "".join(chunks)
        events = raw_events(client, f"responses/{response.id}", params={"stream": "true"})
        check_numbering(events)
        deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
        assert "".join(deltas) == "".join(chunks)
        assert 1 <= len(deltas) <= 3, deltas
        streamed = raw_events(
            client, "responses", body={"model": "gpt-4o", "input": marker, "stream": True}
        )
        deltas = [e["delta"] for e in streamed if e["type"] == "response.output_text.delta"]
        assert deltas == chunks

    def test_the_sdk_resumes_a_stream(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text=["x", "y", "z"]))
        response = client.responses.create(model="gpt-4o", input=marker, background=True)
        wait_response(client, response.id)
        with client.responses.stream(response_id=response.id, starting_after=3) as stream:
            seen = [event.sequence_number for event in stream]
            final = stream.get_final_response()
        assert seen
        assert min(seen) == 4
        assert final.output_text == "xyz"


def test_background_stream_starts_with_created_then_queued(client: OpenAI, marker: str) -> None:
    body = {"model": "gpt-4o", "input": marker, "stream": True, "background": True}
    events = raw_events(client, "responses", body=body)
    check_numbering(events)
    assert events[0]["type"] == "response.created"
    assert events[0]["response"]["background"] is True
    assert events[-1]["type"] == "response.completed"
    assert "response.in_progress" in names(events)

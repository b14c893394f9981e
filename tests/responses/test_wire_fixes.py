"""Where our wire differed from OpenAI's: the status a foreground stream starts with, and what
cancelling a response that has ended answers."""

from __future__ import annotations

from typing import Any

import pytest
from openai import BadRequestError, OpenAI

from tests.responses.conftest import raw_events, wait_response
from tests.runs.conftest import wait_until
from tests.support import strict_types
from tests.support.scripted_model import Reply, ScriptedModel

SLOW = Reply(text=[f"w{i} " for i in range(200)], chunk_delay=0.05)  # ~10 s


def lifecycle(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(event type, the response's status) of the events that carry the response."""
    return [(e["type"], e["response"]["status"]) for e in events if "response" in e]


class TestCreatedStatus:
    def test_a_foreground_stream_is_in_progress_from_the_start(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text=["fore", "ground"]))
        body = {"model": "gpt-4o", "input": marker, "stream": True}
        events = raw_events(client, "responses", body=body)
        for event in events:
            strict_types.event(event)
        assert lifecycle(events) == [
            ("response.created", "in_progress"),
            ("response.in_progress", "in_progress"),
            ("response.completed", "completed"),
        ]
        assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]

    def test_the_sdk_stream_helper_sees_in_progress(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="ok"))
        with client.responses.stream(model="gpt-4o", input=marker) as stream:
            first = next(iter(stream))
            assert first.type == "response.created"
            assert first.response.status == "in_progress"
            final = stream.get_final_response()
        assert final.status == "completed"

    def test_a_background_stream_starts_queued(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="later"))
        body = {"model": "gpt-4o", "input": marker, "stream": True, "background": True}
        events = raw_events(client, "responses", body=body)
        for event in events:
            strict_types.event(event)
        seen = lifecycle(events)
        assert seen[:2] == [("response.created", "queued"), ("response.queued", "queued")]
        assert seen[2:] == [
            ("response.in_progress", "in_progress"),
            ("response.completed", "completed"),
        ]

    def test_a_background_response_is_created_queued(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="later", delay=0.5))
        response = client.responses.create(model="gpt-4o", input=marker, background=True)
        assert response.status in ("queued", "in_progress")
        assert wait_response(client, response.id).status == "completed"


class TestCancelAnEndedResponse:
    def test_cancelling_twice_returns_the_cancelled_response(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, SLOW)
        response = client.responses.create(model="gpt-4o", input=marker, background=True)
        wait_until(
            lambda: client.responses.retrieve(response.id),
            lambda r: bool(r.output),
            what="the model to start answering",
        )
        first = client.responses.cancel(response.id)
        assert first.status == "cancelled"
        again = client.responses.cancel(response.id)
        assert again.status == "cancelled"
        assert again.model_dump() == first.model_dump()
        assert again.model_dump() == client.responses.retrieve(response.id).model_dump()

    def test_cancelling_a_completed_one_returns_it_unchanged(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="finished first"))
        response = client.responses.create(model="gpt-4o", input=marker, background=True)
        done = wait_response(client, response.id)
        assert done.status == "completed"
        answer = client.responses.cancel(response.id)
        assert answer.status == "completed"
        assert answer.output_text == "finished first"
        assert answer.model_dump() == client.responses.retrieve(response.id).model_dump()

    def test_a_foreground_response_is_still_refused(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="sync"))
        response = client.responses.create(model="gpt-4o", input=marker)
        with pytest.raises(BadRequestError) as err:
            client.responses.cancel(response.id)
        assert "synchronous" in err.value.body["message"]  # type: ignore[index]

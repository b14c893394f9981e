"""Background responses: polling, cancel, and what a finished or foreground one refuses."""

from __future__ import annotations

import pytest
from openai import BadRequestError, OpenAI

from tests.responses.conftest import raw_events, wait_response
from tests.runs.conftest import wait_until
from tests.support.scripted_model import Reply, ScriptedModel

SLOW = Reply(text=[f"w{i} " for i in range(200)], chunk_delay=0.05)  # ~10 s


def test_poll_until_done(client: OpenAI, model: ScriptedModel, marker: str) -> None:
    model.script(marker, Reply(text=["back", "ground"], delay=0.3))
    response = client.responses.create(model="gpt-4o", input=marker, background=True)
    assert response.background is True
    assert response.status in ("queued", "in_progress")
    assert response.output == []
    assert response.usage is None
    done = wait_response(client, response.id)
    assert done.status == "completed"
    assert done.output_text == "background"


def test_cancel_a_running_response(client: OpenAI, model: ScriptedModel, marker: str) -> None:
    model.script(marker, SLOW)
    response = client.responses.create(model="gpt-4o", input=marker, background=True)
    wait_until(
        lambda: client.responses.retrieve(response.id),
        lambda r: bool(r.output),
        what="the model to start answering",
    )
    cancelled = client.responses.cancel(response.id)
    assert cancelled.status == "cancelled"
    assert cancelled.completed_at is None
    [message] = cancelled.output
    assert message.status == "incomplete"
    assert client.responses.retrieve(response.id).status == "cancelled"
    assert client.responses.cancel(response.id).status == "cancelled"  # twice: the final one
    # the model stopped being asked: its stream was closed
    wait_until(lambda: model.disconnects(marker), bool, what="the model stream to be closed")


def test_cancel_a_queued_response(client: OpenAI, model: ScriptedModel, marker: str) -> None:
    """Cancelled at once when no worker holds it yet (here: before the model answers)."""
    model.script(marker, Reply(text="late", delay=5))
    response = client.responses.create(model="gpt-4o", input=marker, background=True)
    cancelled = client.responses.cancel(response.id)
    assert cancelled.status == "cancelled"


def test_a_cancelled_stream_ends_with_its_event(
    client: OpenAI, model: ScriptedModel, marker: str
) -> None:
    model.script(marker, SLOW)
    response = client.responses.create(model="gpt-4o", input=marker, background=True)
    wait_until(lambda: client.responses.retrieve(response.id), lambda r: bool(r.output))
    client.responses.cancel(response.id)
    events = raw_events(client, f"responses/{response.id}", params={"stream": "true"})
    assert events[-1]["type"] == "response.cancelled"
    assert events[-1]["response"]["status"] == "cancelled"


def test_what_cannot_be_cancelled(client: OpenAI, marker: str) -> None:
    finished = client.responses.create(model="gpt-4o", input=marker, background=True)
    wait_response(client, finished.id)
    assert client.responses.cancel(finished.id).status == "completed"  # returned as it ended
    foreground = client.responses.create(model="gpt-4o", input=marker)
    with pytest.raises(BadRequestError) as err:
        client.responses.cancel(foreground.id)
    assert "synchronous" in err.value.body["message"]  # type: ignore[index]


def test_a_running_response_is_not_deleted(
    client: OpenAI, model: ScriptedModel, marker: str
) -> None:
    model.script(marker, SLOW)
    response = client.responses.create(model="gpt-4o", input=marker, background=True)
    with pytest.raises(BadRequestError):
        client.responses.delete(response.id)
    client.responses.cancel(response.id)
    client.responses.delete(response.id)

"""Cancelling runs: while the model is generating, while waiting for tool outputs, at once."""

from __future__ import annotations

import time

import pytest
from openai import BadRequestError, OpenAI
from openai.types.beta import Assistant

from tests.runs.conftest import RUN_KEYS, sent_keys, wait_run, wait_until
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall


def test_cancel_during_generation(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    model.script(marker, Reply(text=["Partial answer"], hang=True))
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    # the first token made the assistant's message: the model is mid-answer
    [message] = wait_until(
        lambda: client.beta.threads.messages.list(thread.id, run_id=run.id).data,
        lambda found: len(found) == 1,
        what="the assistant message to start",
    )
    assert message.status == "in_progress"
    assert message.completed_at is None

    asked = time.monotonic()
    cancelling = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelling.status in {"cancelling", "cancelled"}
    assert sent_keys(cancelling) == RUN_KEYS
    run = wait_run(client, thread.id, run.id, {"cancelled"}, timeout=5)
    took = time.monotonic() - asked
    assert took < 1.5, f"cancel took {took:.2f}s"

    assert run.cancelled_at is not None
    assert run.completed_at is None
    assert run.failed_at is None
    assert run.expires_at is None
    assert run.usage is not None
    message = client.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
    assert message.status == "incomplete"
    assert message.incomplete_details is not None
    assert message.incomplete_details.reason == "run_cancelled"
    assert message.incomplete_at is not None
    assert message.content[0].text.value == "Partial answer"  # type: ignore[union-attr]
    [step] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert step.type == "message_creation"
    assert step.status == "cancelled"
    assert step.cancelled_at is not None
    # the backend connection was closed, so the backend stops generating
    wait_until(lambda: model.disconnects(marker), bool, what="the model request to be dropped")
    # the thread is free again
    client.beta.threads.messages.create(thread.id, role="user", content="next")


def test_cancel_while_streaming_slowly(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    model.script(marker, Reply(text="one two three four five six seven eight", chunk_delay=0.3))
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    wait_until(
        lambda: client.beta.threads.messages.list(thread.id, run_id=run.id).data,
        bool,
        what="the assistant message to start",
    )
    asked = time.monotonic()
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    run = wait_run(client, thread.id, run.id, {"cancelled"}, timeout=5)
    assert time.monotonic() - asked < 1.5
    [message] = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert message.status == "incomplete"
    text = message.content[0].text.value  # type: ignore[union-attr]
    assert "one two three four five six seven eight".startswith(text)
    assert text != "one two three four five six seven eight"


def test_cancel_while_waiting_for_tool_outputs(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    model.script(marker, Reply(tool_calls=[ToolCall("lookup", "{}")]))
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    cancelled = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelled.status == "cancelled"  # nobody is executing it: at once
    assert cancelled.required_action is None
    assert cancelled.cancelled_at is not None
    assert cancelled.expires_at is None
    [step] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert step.status == "cancelled"
    assert step.cancelled_at is not None
    with pytest.raises(BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run.id,
            thread_id=thread.id,
            tool_outputs=[{"tool_call_id": "call_x", "output": "late"}],
        )


def test_cancel_right_after_create(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    """Queued or already claimed, a run cancelled at once ends cancelled, with no answer."""
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    model.script(marker, Reply(text="too late", delay=2.0))
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    run = wait_run(client, thread.id, run.id, {"cancelled"}, timeout=5)
    assert run.cancelled_at is not None
    assert [m.role for m in client.beta.threads.messages.list(thread.id)] == ["user"]


def test_cancel_twice_and_after_the_end(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    model.script(marker, Reply(text=["x"], hang=True))
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    wait_run(client, thread.id, run.id, {"in_progress"})
    first = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert first.status in {"cancelling", "cancelled"}
    # The worker may finish the cancel before the second call lands: a run still
    # cancelling answers again, one already cancelled gets OpenAI's 400.
    try:
        second = client.beta.threads.runs.cancel(run.id, thread_id=thread.id).status
    except BadRequestError as error:
        second = error.message
    if second not in {"cancelling", "cancelled"}:
        assert second.endswith("Cannot cancel run with status 'cancelled'.")
    wait_run(client, thread.id, run.id, {"cancelled"})
    with pytest.raises(BadRequestError) as caught:
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert "cancelled" in caught.value.message

    done_thread = client.beta.threads.create(messages=[{"role": "user", "content": "plain"}])
    done = client.beta.threads.runs.create_and_poll(
        thread_id=done_thread.id, assistant_id=assistant.id
    )
    assert done.status == "completed"
    with pytest.raises(BadRequestError):
        client.beta.threads.runs.cancel(done.id, thread_id=done_thread.id)
    assert client.beta.threads.runs.retrieve(done.id, thread_id=done_thread.id).status == (
        "completed"
    )

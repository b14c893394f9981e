"""Run steps: shapes, usage, listing and retrieving."""

from __future__ import annotations

import pytest
from openai import BadRequestError, NotFoundError, OpenAI
from openai.types.beta import Assistant

from tests.runs.conftest import STEP_KEYS, sent_keys
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall

SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def test_message_creation_step(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    model.script(marker, Reply(text="Answer.", usage=(21, 4)))
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    [message] = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    page = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
    [step] = page.data
    assert sent_keys(step) == STEP_KEYS
    assert step.model_dump(exclude_unset=True) == {
        "id": step.id,
        "object": "thread.run.step",
        "created_at": step.created_at,
        "assistant_id": assistant.id,
        "thread_id": thread.id,
        "run_id": run.id,
        "type": "message_creation",
        "status": "completed",
        "step_details": {
            "type": "message_creation",
            "message_creation": {"message_id": message.id},
        },
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": step.completed_at,
        "metadata": {},
        "usage": {"prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25},
    }
    assert step.id.startswith("step_")
    assert run.created_at <= step.created_at <= step.completed_at <= run.completed_at  # type: ignore[operator]
    assert page.first_id == page.last_id == step.id
    assert page.has_more is False
    assert client.beta.threads.runs.steps.retrieve(step.id, thread_id=thread.id, run_id=run.id) == (
        step
    )


def test_tool_step_usage_and_run_usage(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("lookup", '{"q": "z"}')], usage=(10, 5)),
        Reply(text="Done.", usage=(30, 2)),
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    [waiting] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert waiting.type == "tool_calls"
    assert waiting.status == "in_progress"
    assert waiting.completed_at is None
    call_id = run.required_action.submit_tool_outputs.tool_calls[0].id  # type: ignore[union-attr]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": call_id, "output": "42"}],
    )
    assert run.status == "completed"
    tool_step, message_step = client.beta.threads.runs.steps.list(
        run.id, thread_id=thread.id, order="asc"
    ).data
    assert sent_keys(tool_step) == STEP_KEYS
    assert tool_step.id == waiting.id
    assert tool_step.status == "completed"
    assert tool_step.completed_at is not None
    assert tool_step.step_details.model_dump(exclude_unset=True) == {
        "type": "tool_calls",
        "tool_calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"q": "z"}', "output": "42"},
            }
        ],
    }
    assert tool_step.usage is not None
    assert tool_step.usage.model_dump() == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
    }
    assert message_step.usage is not None
    assert message_step.usage.total_tokens == 32
    assert run.usage is not None
    assert run.usage.model_dump() == {
        "prompt_tokens": 40,
        "completion_tokens": 7,
        "total_tokens": 47,
    }


def test_list_order_and_pagination(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("invented", "{}")]),  # answered by the server
        Reply(tool_calls=[ToolCall("invented", "{}")]),
        Reply(text="end"),
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    ascending = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in ascending] == ["tool_calls", "tool_calls", "message_creation"]
    ids = [s.id for s in ascending]
    assert ids == sorted(ids)
    default = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
    assert [s.id for s in default.data] == ids[::-1]  # newest first
    first = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, limit=2, order="asc")
    assert [s.id for s in first.data] == ids[:2]
    assert first.has_more is True
    walked = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, limit=1)
    assert [s.id for s in walked] == ids[::-1]
    after = client.beta.threads.runs.steps.list(
        run.id, thread_id=thread.id, after=ids[0], order="asc"
    )
    assert [s.id for s in after.data] == ids[1:]
    before = client.beta.threads.runs.steps.list(
        run.id, thread_id=thread.id, before=ids[2], order="asc"
    )
    assert [s.id for s in before.data] == ids[:2]


def test_include_is_accepted(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, include=[SEARCH_CONTENT]
    )
    assert run.status == "completed"
    [step] = client.beta.threads.runs.steps.list(
        run.id, thread_id=thread.id, include=[SEARCH_CONTENT]
    ).data
    again = client.beta.threads.runs.steps.retrieve(
        step.id, thread_id=thread.id, run_id=run.id, include=[SEARCH_CONTENT]
    )
    assert again == step
    with pytest.raises(BadRequestError):
        client.beta.threads.runs.steps.list(
            run.id,
            thread_id=thread.id,
            include=["step_details.nonsense"],  # type: ignore[list-item]
        )


def test_steps_are_scoped(
    client: OpenAI,
    other_client: OpenAI,
    assistant: Assistant,
    model: ScriptedModel,
    marker: str,
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    one = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    two = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    [step] = client.beta.threads.runs.steps.list(one.id, thread_id=thread.id).data
    with pytest.raises(NotFoundError):
        client.beta.threads.runs.steps.retrieve(step.id, thread_id=thread.id, run_id=two.id)
    with pytest.raises(NotFoundError):
        other_client.beta.threads.runs.steps.retrieve(step.id, thread_id=thread.id, run_id=one.id)
    with pytest.raises(NotFoundError):
        other_client.beta.threads.runs.steps.list(one.id, thread_id=thread.id)
    with pytest.raises(NotFoundError):
        client.beta.threads.runs.steps.retrieve("step_nope", thread_id=thread.id, run_id=one.id)

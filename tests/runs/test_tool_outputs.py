"""Function calling: requires_action, submit_tool_outputs, and what bad submissions get."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import AzureOpenAI, BadRequestError, OpenAI
from openai.types.beta import Assistant
from openai.types.beta.threads import Run

from tests.runs.conftest import RUN_KEYS, function_tool, sent_keys
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall


@pytest.fixture
def assistant(client: OpenAI) -> Assistant:
    return client.beta.assistants.create(
        model="gpt-4o", tools=[function_tool("lookup"), function_tool("weather")]
    )


def waiting_run(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str, *replies: Reply
) -> Run:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    model.script(marker, *replies)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action", run.last_error
    return run


def call_ids(run: Run) -> list[str]:
    assert run.required_action is not None
    return [call.id for call in run.required_action.submit_tool_outputs.tool_calls]


def outputs(run: Run, prefix: str = "out") -> list[dict[str, str]]:
    return [{"tool_call_id": cid, "output": f"{prefix}-{i}"} for i, cid in enumerate(call_ids(run))]


class TestRequiresAction:
    def test_parallel_calls(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        run = waiting_run(
            client,
            assistant,
            model,
            marker,
            Reply(
                tool_calls=[
                    ToolCall("lookup", '{"q": "a"}'),
                    ToolCall("weather", '{"q": "Paris"}'),
                    ToolCall("lookup", '{"q": "b"}'),
                ]
            ),
        )
        assert sent_keys(run) == RUN_KEYS
        assert run.required_action is not None
        assert run.required_action.type == "submit_tool_outputs"
        calls = run.required_action.submit_tool_outputs.tool_calls
        assert [(c.type, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
            ("function", "lookup", {"q": "a"}),
            ("function", "weather", {"q": "Paris"}),
            ("function", "lookup", {"q": "b"}),
        ]
        ids = [c.id for c in calls]
        assert len(set(ids)) == 3
        assert all(i.startswith("call_") for i in ids)
        assert run.usage is None  # not terminal
        assert run.expires_at is not None
        assert run.started_at is not None
        assert run.completed_at is None
        # the step shows the calls, without outputs yet
        [step] = client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id).data
        assert step.type == "tool_calls"
        assert step.status == "in_progress"
        assert step.step_details.model_dump(exclude_unset=True) == {
            "type": "tool_calls",
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {
                        "name": c.function.name,
                        "arguments": c.function.arguments,
                        "output": None,
                    },
                }
                for c in calls
            ],
        }

    def test_submit_and_continue_for_several_turns(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        run = waiting_run(
            client,
            assistant,
            model,
            marker,
            Reply(tool_calls=[ToolCall("lookup", '{"q": "1"}'), ToolCall("weather", "{}")]),
            Reply(tool_calls=[ToolCall("lookup", '{"q": "2"}')]),
            Reply(text="All done."),
        )
        first_ids = call_ids(run)
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=run.thread_id, tool_outputs=outputs(run, "first")
        )
        assert run.status == "requires_action"
        second_ids = call_ids(run)
        assert not set(first_ids) & set(second_ids)
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=run.thread_id, tool_outputs=outputs(run, "second")
        )
        assert run.status == "completed", run.last_error
        assert run.required_action is None
        assert run.usage is not None
        # what the model saw on its last turn: both rounds of calls and outputs, in order
        last = model.requests(marker)[-1]["messages"]
        assert last[0] == {"role": "user", "content": marker}
        assert last[1]["role"] == "assistant"
        assert [c["id"] for c in last[1]["tool_calls"]] == first_ids
        assert [c["function"]["name"] for c in last[1]["tool_calls"]] == ["lookup", "weather"]
        assert last[2:4] == [
            {"role": "tool", "tool_call_id": first_ids[0], "content": "first-0"},
            {"role": "tool", "tool_call_id": first_ids[1], "content": "first-1"},
        ]
        assert [c["id"] for c in last[4]["tool_calls"]] == second_ids
        assert last[5] == {"role": "tool", "tool_call_id": second_ids[0], "content": "second-0"}
        assert len(last) == 6
        # steps: two tool steps with their outputs, then the message
        steps = client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc")
        kinds = [(s.type, s.status) for s in steps]
        assert kinds == [
            ("tool_calls", "completed"),
            ("tool_calls", "completed"),
            ("message_creation", "completed"),
        ]
        outputs_seen = [
            call.function.output  # type: ignore[union-attr]
            for s in steps.data[:2]
            for call in s.step_details.tool_calls  # type: ignore[union-attr]
        ]
        assert outputs_seen == ["first-0", "first-1", "second-0"]
        messages = client.beta.threads.messages.list(run.thread_id, order="asc").data
        assert [m.role for m in messages] == ["user", "assistant"]
        assert messages[1].content[0].text.value == "All done."  # type: ignore[union-attr]

    def test_azure_submit_tool_outputs_and_poll(
        self, azure_client: AzureOpenAI, model: ScriptedModel, marker: str
    ) -> None:
        assistant = azure_client.beta.assistants.create(
            model="gpt-4o", tools=[function_tool("lookup")]
        )
        thread = azure_client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(
            marker, Reply(tool_calls=[ToolCall("lookup", '{"q": "x"}')]), Reply(text="Got it.")
        )
        run = azure_client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "requires_action"
        run = azure_client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=thread.id, tool_outputs=outputs(run)
        )
        assert run.status == "completed", run.last_error
        assert sent_keys(run) == RUN_KEYS
        last = azure_client.beta.threads.messages.list(thread.id).data[0]
        assert last.content[0].text.value == "Got it."  # type: ignore[union-attr]

    def test_text_before_the_calls_is_a_message(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        run = waiting_run(
            client,
            assistant,
            model,
            marker,
            Reply(text="Let me check.", tool_calls=[ToolCall("lookup", "{}")]),
            Reply(text="Checked."),
        )
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=run.thread_id, tool_outputs=outputs(run)
        )
        assert run.status == "completed"
        texts = [
            m.content[0].text.value  # type: ignore[union-attr]
            for m in client.beta.threads.messages.list(run.thread_id, run_id=run.id, order="asc")
        ]
        assert texts == ["Let me check.", "Checked."]
        steps = client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc")
        assert [s.type for s in steps] == ["message_creation", "tool_calls", "message_creation"]

    def test_a_call_to_an_unknown_function_goes_back_to_the_model(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(marker, Reply(tool_calls=[ToolCall("invented", "{}")]), Reply(text="Sorry."))
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "completed", run.last_error
        step = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data[0]
        call = step.step_details.tool_calls[0]  # type: ignore[union-attr]
        assert call.function.output == "Error: there is no tool named 'invented'."  # type: ignore[union-attr]
        tool_message = model.requests(marker)[-1]["messages"][-1]
        assert tool_message["role"] == "tool"
        assert "no tool named 'invented'" in tool_message["content"]

    def test_the_thread_stays_locked_after_submit(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        run = waiting_run(
            client,
            assistant,
            model,
            marker,
            Reply(tool_calls=[ToolCall("lookup", "{}")]),
            Reply(text="slow", hang=True),
        )
        resumed = client.beta.threads.runs.submit_tool_outputs(
            run_id=run.id, thread_id=run.thread_id, tool_outputs=outputs(run)
        )
        assert resumed.status in {"queued", "in_progress"}
        assert resumed.required_action is None
        with pytest.raises(BadRequestError):
            client.beta.threads.messages.create(run.thread_id, role="user", content="no")
        client.beta.threads.runs.cancel(run.id, thread_id=run.thread_id)


class TestBadSubmissions:
    def assert_unchanged(self, client: OpenAI, run: Run) -> None:
        now = client.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id)
        assert now.status == "requires_action"
        assert now.required_action == run.required_action
        [step] = client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id).data
        assert step.status == "in_progress"
        assert all(
            c.function.output is None  # type: ignore[union-attr]
            for c in step.step_details.tool_calls  # type: ignore[union-attr]
        )

    def test_rejected_and_nothing_changes(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        run = waiting_run(
            client,
            assistant,
            model,
            marker,
            Reply(tool_calls=[ToolCall("lookup", "{}"), ToolCall("weather", "{}")]),
            Reply(text="fine"),
        )
        a, b = call_ids(run)
        bad: dict[str, list[Any]] = {
            "missing one": [{"tool_call_id": a, "output": "x"}],
            "none": [],
            "unknown id": [
                {"tool_call_id": a, "output": "x"},
                {"tool_call_id": "call_unknown", "output": "y"},
            ],
            "duplicate": [
                {"tool_call_id": a, "output": "x"},
                {"tool_call_id": a, "output": "x"},
                {"tool_call_id": b, "output": "y"},
            ],
            "extra": [
                {"tool_call_id": a, "output": "x"},
                {"tool_call_id": b, "output": "y"},
                {"tool_call_id": "call_more", "output": "z"},
            ],
            "no output": [{"tool_call_id": a}, {"tool_call_id": b, "output": "y"}],
            "output not a string": [
                {"tool_call_id": a, "output": {"x": 1}},
                {"tool_call_id": b, "output": "y"},
            ],
        }
        for case, tool_outputs in bad.items():
            with pytest.raises(BadRequestError) as caught:
                client.beta.threads.runs.submit_tool_outputs(
                    run_id=run.id, thread_id=run.thread_id, tool_outputs=tool_outputs
                )
            assert caught.value.status_code == 400, case
            assert caught.value.type == "invalid_request_error", case
            self.assert_unchanged(client, run)
        with pytest.raises(BadRequestError) as caught:
            client.beta.threads.runs.submit_tool_outputs(
                run_id=run.id, thread_id=run.thread_id, tool_outputs=[outputs(run)[0]]
            )
        assert b in caught.value.message  # names what is missing
        # the right submission still works
        done = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=run.thread_id, tool_outputs=outputs(run)
        )
        assert done.status == "completed"

    def test_only_a_waiting_run_takes_outputs(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        run = waiting_run(
            client,
            assistant,
            model,
            marker,
            Reply(tool_calls=[ToolCall("lookup", "{}")]),
            Reply(text="fine"),
        )
        given = outputs(run)
        done = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=run.thread_id, tool_outputs=given
        )
        assert done.status == "completed"
        with pytest.raises(BadRequestError) as caught:
            client.beta.threads.runs.submit_tool_outputs(
                run_id=run.id, thread_id=run.thread_id, tool_outputs=given
            )
        assert "completed" in caught.value.message
        assert client.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id) == done


def test_a_requeued_run_keeps_its_deadline(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    """After `submit_tool_outputs` the run is queued again with the `expires_at` it had."""
    run = waiting_run(
        client,
        assistant,
        model,
        marker,
        Reply(tool_calls=[ToolCall("lookup", "{}")]),
        Reply(text="done", delay=0.5),
    )
    deadline = run.expires_at
    assert deadline is not None
    queued = client.beta.threads.runs.submit_tool_outputs(
        run_id=run.id, thread_id=run.thread_id, tool_outputs=outputs(run, "x")
    )
    assert queued.status == "queued"
    assert queued.expires_at == deadline

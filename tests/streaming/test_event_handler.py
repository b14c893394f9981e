"""Streaming through the official SDK's helpers (`runs.stream`, `create_and_stream`,
`threads.create_and_run_stream`, `submit_tool_outputs_stream`) with an `AssistantEventHandler`
that records every callback, with the OpenAI and the AzureOpenAI client."""

from __future__ import annotations

from openai import AzureOpenAI, OpenAI
from openai.types.beta import Assistant

from tests.streaming.conftest import wait_run
from tests.streaming.support import (
    MESSAGE_START,
    RUN_START,
    STEP_START,
    Recorder,
    after_tool_outputs,
    function_call_run,
    text_callbacks,
    text_run,
)
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall

Client = OpenAI | AzureOpenAI
CHUNKS = ["The", " answer", " is", " 42", "."]


def _stored_text(sdk: Client, thread_id: str) -> str:
    latest = sdk.beta.threads.messages.list(thread_id, limit=1).data[0]
    assert latest.role == "assistant"
    part = latest.content[0]
    assert part.type == "text"
    return part.text.value


def _ids(recorder: Recorder) -> tuple[str, str]:
    """(message step id, message id) of the stream's message."""
    step = next(e for e in recorder.events if e.event == "thread.run.step.created")
    message = next(e for e in recorder.events if e.event == "thread.message.created")
    return step.data.id, message.data.id


class TestTextRun:
    def test_every_callback_in_order(
        self, sdk: Client, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text=CHUNKS))
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": marker}])
        with sdk.beta.threads.runs.stream(
            thread_id=thread.id, assistant_id=assistant.id, event_handler=Recorder()
        ) as stream:
            stream.until_done()
            run = stream.get_final_run()
            messages = stream.get_final_messages()
        assert stream.names == text_run(len(CHUNKS))
        step_id, message_id = _ids(stream)
        assert stream.callbacks() == [*text_callbacks(message_id, CHUNKS, step_id), ("end",)]
        assert run.status == "completed"
        assert run.usage is not None
        assert [m.id for m in messages] == [message_id]
        assert messages[0].status == "completed"
        text = messages[0].content[0]
        assert text.type == "text"
        assert text.text.value == "".join(CHUNKS) == _stored_text(sdk, thread.id)
        # Every event carries the run's objects: same run id, same thread.
        for event in stream.events:
            if event.event.startswith("thread.run.") and ".step" not in event.event:
                assert event.data.id == run.id
                assert event.data.thread_id == thread.id

    def test_text_deltas_are_the_model_chunks(
        self, sdk: Client, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        chunks = ["Hel", "lo", ",", " wor", "ld", " — ", "é", "\n", "ok"]
        model.script(marker, Reply(text=chunks))
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": marker}])
        with sdk.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as s:
            deltas = list(s.text_deltas)
            final = s.get_final_messages()[0]
        # One delta per backend chunk: nothing batched, nothing split.
        assert deltas == chunks
        assert final.content[0].type == "text"
        assert final.content[0].text.value == "".join(chunks) == _stored_text(sdk, thread.id)

    def test_create_and_stream(
        self, sdk: Client, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text=CHUNKS))
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": marker}])
        with sdk.beta.threads.runs.create_and_stream(
            thread_id=thread.id, assistant_id=assistant.id, event_handler=Recorder()
        ) as stream:
            stream.until_done()
        assert stream.names == text_run(len(CHUNKS))
        assert stream.get_final_run().status == "completed"


class TestThreadAndRun:
    def test_thread_created_comes_first(
        self, sdk: Client, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text=CHUNKS))
        with sdk.beta.threads.create_and_run_stream(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": marker}]},
            event_handler=Recorder(),
        ) as stream:
            stream.until_done()
        assert stream.names == ["thread.created", *text_run(len(CHUNKS))]
        thread = stream.events[0].data
        assert thread.object == "thread"
        run = stream.get_final_run()
        assert run.status == "completed"
        assert run.thread_id == thread.id
        step_id, message_id = _ids(stream)
        assert stream.callbacks() == [*text_callbacks(message_id, CHUNKS, step_id), ("end",)]
        assert _stored_text(sdk, thread.id) == "".join(CHUNKS)


class TestFunctionCalls:
    def test_requires_action_then_submit_tool_outputs_stream(
        self, sdk: Client, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        arguments = '{"city": "Paris"}'  # streamed in 3 fragments of 8 characters
        answer = ["Sunny", " in", " Paris", "."]
        model.script(
            marker,
            Reply(tool_calls=[ToolCall("get_weather", arguments)]),
            Reply(text=answer),
        )
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": marker}])
        with sdk.beta.threads.runs.stream(
            thread_id=thread.id, assistant_id=assistant.id, event_handler=Recorder()
        ) as stream:
            stream.until_done()
        assert stream.names == function_call_run(1 + 3)
        run = stream.get_final_run()
        assert run.status == "requires_action"
        assert run.required_action is not None
        call = run.required_action.submit_tool_outputs.tool_calls[0]
        assert (call.function.name, call.function.arguments) == ("get_weather", arguments)
        step = stream.events[3].data
        assert step.type == "tool_calls"
        assert step.step_details.type == "tool_calls"
        assert step.step_details.tool_calls == []
        assert stream.callbacks() == [
            ("run_step_created", step.id, "tool_calls", "in_progress"),
            ("tool_call_created", call.id, "get_weather"),
            ("run_step_delta", step.id),
            ("tool_call_delta", 0, '{"city":'),
            ("run_step_delta", step.id),
            ("tool_call_delta", 0, ' "Paris"'),
            ("run_step_delta", step.id),
            ("tool_call_delta", 0, "}"),
            ("run_step_delta", step.id),
            ("tool_call_done", call.id, arguments),
            ("end",),
        ]
        # The SDK's snapshot of the step has the whole call.
        (snapshot,) = stream.get_final_run_steps()
        assert snapshot.step_details.type == "tool_calls"
        assembled = snapshot.step_details.tool_calls[0]
        assert assembled.type == "function"
        assert (assembled.id, assembled.function.arguments) == (call.id, arguments)

        with sdk.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=thread.id,
            run_id=run.id,
            tool_outputs=[{"tool_call_id": call.id, "output": "22C"}],
            event_handler=Recorder(),
        ) as after:
            after.until_done()
        assert after.names == after_tool_outputs(len(answer))
        done_step = after.events[0].data
        assert done_step.id == step.id
        assert done_step.status == "completed"
        output = done_step.step_details.tool_calls[0]
        assert (output.id, output.function.output) == (call.id, "22C")
        assert after.events[1].data.status == "queued"
        assert after.events[2].data.status == "in_progress"
        message_step_id, message_id = _ids(after)
        assert after.callbacks() == [
            ("run_step_done", step.id, "completed"),
            *text_callbacks(message_id, answer, message_step_id),
            ("end",),
        ]
        assert after.get_final_run().status == "completed"
        assert _stored_text(sdk, thread.id) == "Sunny in Paris."


class TestEarlyEnds:
    def test_model_failure(
        self, sdk: Client, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(status=500, error_message="backend exploded"))
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": marker}])
        with sdk.beta.threads.runs.stream(
            thread_id=thread.id, assistant_id=assistant.id, event_handler=Recorder()
        ) as stream:
            stream.until_done()
        assert stream.names == [*RUN_START, "thread.run.failed"]
        run = stream.get_final_run()
        assert run.status == "failed"
        assert run.last_error is not None
        assert run.last_error.code == "server_error"
        assert run.failed_at is not None
        assert stream.callbacks() == [("end",)]

    def test_cancel_during_the_stream(
        self, sdk: Client, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text=["Partial", " answer"], hang=True))
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": marker}])
        with sdk.beta.threads.runs.stream(
            thread_id=thread.id, assistant_id=assistant.id, event_handler=Recorder()
        ) as stream:
            deltas = 0
            for event in stream:
                if event.event == "thread.message.delta":
                    deltas += 1
                    if deltas == 2:
                        current = stream.current_run
                        assert current is not None
                        cancelling = sdk.beta.threads.runs.cancel(current.id, thread_id=thread.id)
                        assert cancelling.status == "cancelling"
        assert stream.names == [
            *RUN_START,
            *STEP_START,
            *MESSAGE_START,
            "thread.message.delta",
            "thread.message.delta",
            "thread.run.cancelling",
            "thread.message.incomplete",
            "thread.run.step.cancelled",
            "thread.run.cancelled",
        ]
        step_id, message_id = _ids(stream)
        message = stream.events[-3].data
        assert message.status == "incomplete"
        assert message.incomplete_details is not None
        assert message.incomplete_details.reason == "run_cancelled"
        assert stream.callbacks()[-4:] == [
            ("text_done", "Partial answer"),
            ("message_done", message_id, "incomplete"),
            ("run_step_done", step_id, "cancelled"),
            ("end",),
        ]
        run = stream.get_final_run()
        assert run.status == "cancelled"
        assert run.cancelled_at is not None
        assert _stored_text(sdk, thread.id) == "Partial answer"

    def test_incomplete_run(
        self, sdk: Client, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text=["Cut", " short"], finish_reason="length"))
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": marker}])
        with sdk.beta.threads.runs.stream(
            thread_id=thread.id,
            assistant_id=assistant.id,
            max_completion_tokens=256,
            event_handler=Recorder(),
        ) as stream:
            stream.until_done()
        assert stream.names == [
            *RUN_START,
            *STEP_START,
            *MESSAGE_START,
            "thread.message.delta",
            "thread.message.delta",
            "thread.message.incomplete",
            "thread.run.step.completed",
            "thread.run.incomplete",
        ]
        message = stream.get_final_messages()[0]
        assert message.status == "incomplete"
        assert message.incomplete_details is not None
        assert message.incomplete_details.reason == "max_tokens"
        run = stream.get_final_run()
        assert run.status == "incomplete"
        assert run.incomplete_details is not None
        assert run.incomplete_details.reason == "max_completion_tokens"
        assert wait_run(sdk, thread.id, run.id).status == "incomplete"

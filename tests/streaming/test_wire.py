"""The wire: raw SSE frames (httpx) and the SDK's low-level `stream=True` iteration."""

from __future__ import annotations

import httpx
from openai import AzureOpenAI, OpenAI
from openai.types.beta import Assistant, Thread
from openai.types.beta.threads import Message, MessageDeltaEvent, Run
from openai.types.beta.threads.runs import RunStep, RunStepDeltaEvent

from tests.streaming.support import (
    after_tool_outputs,
    check_deltas_follow_snapshots,
    function_call_run,
    raw_stream,
    text_run,
)
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall

SNAPSHOT_TYPES = {
    "thread": Thread,
    "thread.run": Run,
    "thread.run.step": RunStep,
    "thread.message": Message,
    "thread.message.delta": MessageDeltaEvent,
    "thread.run.step.delta": RunStepDeltaEvent,
}


class TestLowLevelIteration:
    def test_text_run(
        self, sdk: OpenAI | AzureOpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        chunks = ["Low", "-level", " stream", "."]
        model.script(marker, Reply(text=chunks))
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": marker}])
        events = list(
            sdk.beta.threads.runs.create(
                thread_id=thread.id, assistant_id=assistant.id, stream=True
            )
        )
        assert [e.event for e in events] == text_run(len(chunks))
        message = next(e.data for e in events if e.event == "thread.message.created")
        step = next(e.data for e in events if e.event == "thread.run.step.created")
        assert isinstance(message, Message)
        assert isinstance(step, RunStep)
        assert message.content == []
        assert message.status == "in_progress"
        assert (message.run_id, message.assistant_id) == (events[0].data.id, assistant.id)
        assert step.step_details.type == "message_creation"
        assert step.step_details.message_creation.message_id == message.id
        deltas = [e.data for e in events if e.event == "thread.message.delta"]
        for delta, chunk in zip(deltas, chunks, strict=True):
            assert isinstance(delta, MessageDeltaEvent)
            assert (delta.id, delta.object) == (message.id, "thread.message.delta")
            (part,) = delta.delta.content or []
            assert (part.index, part.type) == (0, "text")
            assert part.text is not None
            assert part.text.value == chunk
        completed = events[-3].data
        assert isinstance(completed, Message)
        assert completed.content[0].type == "text"
        assert completed.content[0].text.value == "".join(chunks)

    def test_function_call_run(
        self, sdk: OpenAI | AzureOpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(tool_calls=[ToolCall("get_weather", '{"city": "Oslo"}')]))
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": marker}])
        events = list(
            sdk.beta.threads.runs.create(
                thread_id=thread.id, assistant_id=assistant.id, stream=True
            )
        )
        assert [e.event for e in events] == function_call_run(1 + 2)
        step = events[3].data
        deltas = [e.data for e in events if e.event == "thread.run.step.delta"]
        for delta in deltas:
            assert isinstance(delta, RunStepDeltaEvent)
            assert (delta.id, delta.object) == (step.id, "thread.run.step.delta")
        first = deltas[0].delta.step_details
        assert first is not None
        assert first.type == "tool_calls"
        (call,) = first.tool_calls or []
        assert call.type == "function"
        assert call.index == 0
        assert call.id is not None
        assert call.id.startswith("call_")
        assert call.function is not None
        assert (call.function.name, call.function.arguments, call.function.output) == (
            "get_weather",
            "",
            None,
        )
        fragments = []
        for delta in deltas[1:]:
            details = delta.delta.step_details
            assert details is not None
            assert details.type == "tool_calls"
            (fragment,) = details.tool_calls or []
            assert fragment.type == "function"
            assert fragment.index == 0
            assert fragment.function is not None
            fragments.append(fragment.function.arguments)
        assert "".join(f or "" for f in fragments) == '{"city": "Oslo"}'
        run = events[-1].data
        assert isinstance(run, Run)
        assert run.required_action is not None
        assert run.required_action.submit_tool_outputs.tool_calls[0].id == call.id


class TestRawFrames:
    def test_text_run_frames(
        self, http: httpx.Client, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        chunks = [" leading space", "", "two\nlines", ' "quoted" ', "ünïcødé ✓"]
        model.script(marker, Reply(text=chunks))
        thread = http.post("/threads", json={"messages": [{"role": "user", "content": marker}]})
        frames = raw_stream(
            http,
            "POST",
            f"/threads/{thread.json()['id']}/runs",
            {"assistant_id": assistant.id, "stream": True},
        )
        sent = [c for c in chunks if c]  # an empty chunk carries no text: no delta
        assert [f.event for f in frames] == [*text_run(len(sent)), "done"]
        assert frames[-1].data == "[DONE]"
        # Our extension: `id:` is the event's sequence number, for re-attaching.
        assert [f.id for f in frames[:-1]] == list(range(1, len(frames)))
        check_deltas_follow_snapshots(frames)
        values = [
            f.json()["delta"]["content"][0]["text"]["value"]
            for f in frames
            if f.event == "thread.message.delta"
        ]
        assert values == sent
        for frame in frames[:-1]:
            data = frame.json()
            SNAPSHOT_TYPES[data["object"]].model_validate(data)
            assert frame.event.startswith(data["object"])

    def test_thread_and_run_frames(
        self, http: httpx.Client, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text=["a", "b"]))
        frames = raw_stream(
            http,
            "POST",
            "/threads/runs",
            {
                "assistant_id": assistant.id,
                "thread": {"messages": [{"role": "user", "content": marker}]},
                "stream": True,
            },
        )
        assert [f.event for f in frames] == ["thread.created", *text_run(2), "done"]
        thread = frames[0].json()
        assert thread["object"] == "thread"
        assert frames[1].json()["thread_id"] == thread["id"]

    def test_submit_tool_outputs_frames_continue_the_sequence(
        self, http: httpx.Client, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        model.script(
            marker,
            Reply(tool_calls=[ToolCall("get_weather", "{}"), ToolCall("get_weather", "{}")]),
            Reply(text=["Two", " answers"]),
        )
        thread_id = http.post(
            "/threads", json={"messages": [{"role": "user", "content": marker}]}
        ).json()["id"]
        first = raw_stream(
            http,
            "POST",
            f"/threads/{thread_id}/runs",
            {"assistant_id": assistant.id, "stream": True},
        )
        # Two calls: each opens with its head delta (index 0 then 1), then its arguments.
        assert [f.event for f in first] == [*function_call_run(4), "done"]
        heads = [
            f.json()["delta"]["step_details"]["tool_calls"][0]
            for f in first
            if f.event == "thread.run.step.delta"
        ]
        assert [(h["index"], "id" in h) for h in heads] == [(0, True), (0, False)] + [
            (1, True),
            (1, False),
        ]
        run = first[-2].json()
        calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
        second = raw_stream(
            http,
            "POST",
            f"/threads/{thread_id}/runs/{run['id']}/submit_tool_outputs",
            {
                "tool_outputs": [{"tool_call_id": c["id"], "output": c["id"][-4:]} for c in calls],
                "stream": True,
            },
        )
        assert [f.event for f in second] == [*after_tool_outputs(2), "done"]
        ids = [f.id for f in second[:-1]]
        assert ids == list(range(first[-2].id + 1, first[-2].id + 1 + len(ids)))
        outputs = [c["function"]["output"] for c in second[0].json()["step_details"]["tool_calls"]]
        assert outputs == [c["id"][-4:] for c in calls]
        check_deltas_follow_snapshots(second)

    def test_json_when_not_streaming(
        self, http: httpx.Client, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        thread_id = http.post(
            "/threads", json={"messages": [{"role": "user", "content": marker}]}
        ).json()["id"]
        # `Accept: text/event-stream` alone does not stream: only the body's `stream` does.
        response = http.post(
            f"/threads/{thread_id}/runs",
            json={"assistant_id": assistant.id},
            headers={"Accept": "text/event-stream"},
        )
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["status"] == "queued"

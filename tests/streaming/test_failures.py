"""A model that stops in the middle of its answer: the stream ends with the run failed."""

from __future__ import annotations

import httpx
from openai import OpenAI

from tests.streaming.support import (
    MESSAGE_START,
    RUN_START,
    STEP_START,
    WEATHER_TOOL,
    Recorder,
    raw_stream,
)
from tests.support.scripted_model import Reply, ScriptedModel

FAILED_MID_MESSAGE = [
    *RUN_START,
    *STEP_START,
    *MESSAGE_START,
    "thread.message.delta",
    "thread.message.delta",
    "thread.message.incomplete",
    "thread.run.step.failed",
    "thread.run.failed",
]


def test_model_going_silent_mid_answer_fails_the_run(
    impatient: OpenAI, model: ScriptedModel, marker: str
) -> None:
    model.script(marker, Reply(text=["Half", " an"], hang=True))
    assistant = impatient.beta.assistants.create(model="gpt-4o", tools=[WEATHER_TOOL])
    thread = impatient.beta.threads.create(messages=[{"role": "user", "content": marker}])
    with impatient.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=Recorder()
    ) as stream:
        stream.until_done()
    assert stream.names == FAILED_MID_MESSAGE
    message = stream.events[-3].data
    assert message.status == "incomplete"
    assert message.incomplete_details is not None
    assert message.incomplete_details.reason == "run_failed"
    assert message.content[0].type == "text"
    assert message.content[0].text.value == "Half an"
    step = stream.events[-2].data
    assert step.status == "failed"
    assert step.last_error is not None
    run = stream.get_final_run()
    assert run.status == "failed"
    assert run.last_error is not None
    assert run.last_error.code == "server_error"
    assert stream.callbacks()[-4:] == [
        ("text_done", "Half an"),
        ("message_done", message.id, "incomplete"),
        ("run_step_done", step.id, "failed"),
        ("end",),
    ]


def test_raw_stream_of_a_failed_run_ends_with_done(
    impatient: OpenAI, model: ScriptedModel, marker: str
) -> None:
    model.script(marker, Reply(text=["Half"], hang=True))
    assistant = impatient.beta.assistants.create(model="gpt-4o")
    headers = {"Authorization": f"Bearer {impatient.api_key}"}
    with httpx.Client(base_url=str(impatient.base_url), headers=headers, timeout=30) as http:
        frames = raw_stream(
            http,
            "POST",
            "threads/runs",
            {
                "assistant_id": assistant.id,
                "thread": {"messages": [{"role": "user", "content": marker}]},
                "stream": True,
            },
        )
    names = [f.event for f in frames]
    assert names[-3:] == ["thread.run.step.failed", "thread.run.failed", "done"]
    assert frames[-1].data == "[DONE]"

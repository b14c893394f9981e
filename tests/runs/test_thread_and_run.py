"""Creating a thread and running it in one request."""

from __future__ import annotations

import pytest
from openai import AzureOpenAI, BadRequestError, NotFoundError, OpenAI
from openai.types.beta import Assistant

from tests.runs.conftest import RUN_KEYS, sent_keys, wait_run
from tests.support.scripted_model import Reply, ScriptedModel


def test_create_and_run_poll(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    attached = client.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="assistants")
    model.script(marker, Reply(text="Thread answered."))
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={
            "messages": [
                {"role": "user", "content": f"{marker} first"},
                {"role": "assistant", "content": "earlier"},
                {"role": "user", "content": "second", "metadata": {"m": "1"}},
            ],
            "metadata": {"thread": "yes"},
        },
        tool_resources={"code_interpreter": {"file_ids": [attached.id]}},
        metadata={"run": "yes"},
        instructions="Run instructions.",
        temperature=0.5,
    )
    assert run.status == "completed", run.last_error
    assert sent_keys(run) == RUN_KEYS
    assert run.metadata == {"run": "yes"}
    assert run.instructions == "Run instructions."
    assert run.temperature == 0.5
    thread = client.beta.threads.retrieve(run.thread_id)
    assert thread.metadata == {"thread": "yes"}
    assert thread.tool_resources is not None
    assert thread.tool_resources.code_interpreter is not None
    assert thread.tool_resources.code_interpreter.file_ids == [attached.id]
    listed = client.beta.threads.messages.list(run.thread_id, order="asc").data
    assert [(m.role, m.content[0].text.value) for m in listed] == [  # type: ignore[union-attr]
        ("user", f"{marker} first"),
        ("assistant", "earlier"),
        ("user", "second"),
        ("assistant", "Thread answered."),
    ]
    assert listed[2].metadata == {"m": "1"}
    assert listed[3].run_id == run.id
    assert model.requests(marker)[-1]["messages"] == [
        {"role": "system", "content": "Run instructions."},
        {"role": "user", "content": f"{marker} first"},
        {"role": "assistant", "content": "earlier"},
        {"role": "user", "content": "second"},
    ]
    assert [r.id for r in client.beta.threads.runs.list(run.thread_id)] == [run.id]


def test_create_and_run_returns_the_queued_run(
    client: OpenAI, assistant: Assistant, marker: str
) -> None:
    run = client.beta.threads.create_and_run(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": marker}]}
    )
    assert sent_keys(run) == RUN_KEYS
    assert run.thread_id.startswith("thread_")
    assert run.status in {"queued", "in_progress", "completed"}
    assert wait_run(client, run.thread_id, run.id, {"completed"}).usage is not None


def test_without_a_thread_body(client: OpenAI, assistant: Assistant) -> None:
    run = client.beta.threads.create_and_run_poll(assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    thread = client.beta.threads.retrieve(run.thread_id)
    assert thread.metadata == {}
    messages = client.beta.threads.messages.list(run.thread_id).data
    assert [m.role for m in messages] == ["assistant"]


def test_azure_create_and_run_poll(
    azure_client: AzureOpenAI, model: ScriptedModel, marker: str
) -> None:
    assistant = azure_client.beta.assistants.create(model="gpt-4o")
    model.script(marker, Reply(text="Azure thread."))
    run = azure_client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": marker}], "metadata": {"a": "b"}},
    )
    assert run.status == "completed", run.last_error
    assert azure_client.beta.threads.retrieve(run.thread_id).metadata == {"a": "b"}


def test_refusals(client: OpenAI, assistant: Assistant) -> None:
    with pytest.raises(NotFoundError):
        client.beta.threads.create_and_run(assistant_id="asst_missing")
    with pytest.raises(BadRequestError):
        client.beta.threads.create_and_run(
            assistant_id=assistant.id,
            tool_resources={"code_interpreter": {"file_ids": ["file-missing"]}},
        )
    with pytest.raises(BadRequestError):
        client.beta.threads.create_and_run(
            assistant_id=assistant.id,
            thread={
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_file", "image_file": {"file_id": "file-x"}}],
                    }
                ]
            },
        )
    with pytest.raises(BadRequestError):
        client.beta.threads.create_and_run(
            assistant_id=assistant.id,
            extra_body={"additional_instructions": "not on this endpoint"},
        )

"""An assistant with `file_search` searches its vector store, answers and cites."""

from __future__ import annotations

import json

from openai import OpenAI

from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.vector_stores.documents import make_pdf

INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"
GUIDE = (
    "Lighthouse keeper's guide. The lamp must be lit thirty minutes before sunset.\n\n"
    "The fog horn sounds two long blasts every minute while visibility is under one mile."
)


def _store_with(client: OpenAI, name: str, data: bytes) -> tuple[str, str]:
    store = client.vector_stores.create(name="kb")
    vs_file = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=(name, data), poll_interval_ms=50
    )
    assert vs_file.status == "completed", vs_file.last_error
    return store.id, vs_file.id


def test_run_searches_and_cites(client: OpenAI, model: ScriptedModel) -> None:
    store_id, file_id = _store_with(client, "guide.txt", GUIDE.encode())
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "file_search", "file_search": {"max_num_results": 3}}],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    )
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "fs-cite: how often does the fog horn sound?"}]
    )
    answer = "Two long blasts every minute 【0†guide.txt】 in fog."
    model.script(
        "fs-cite",
        Reply(tool_calls=[ToolCall("file_search", json.dumps({"queries": ["fog horn"]}))]),
        Reply(text=answer),
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )
    assert run.status == "completed", run.last_error

    # The model was given the function and read ranked chunks with source markers.
    first, second = model.requests("fs-cite")[:2]
    (tool,) = first["tools"]
    assert tool["function"]["name"] == "file_search"
    tool_output = next(m for m in second["messages"] if m["role"] == "tool")["content"]
    assert "fog horn sounds two long blasts" in tool_output
    assert "†guide.txt】" in tool_output

    message = client.beta.threads.messages.list(thread.id, order="desc", limit=1).data[0]
    text = message.content[0].text  # type: ignore[union-attr]
    assert text.value == answer
    (citation,) = text.annotations
    assert citation.type == "file_citation"
    assert citation.file_citation.file_id == file_id  # type: ignore[union-attr]
    assert citation.text == "【0†guide.txt】"
    assert text.value[citation.start_index : citation.end_index] == citation.text

    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc"))
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    (call,) = steps[0].step_details.tool_calls  # type: ignore[union-attr]
    assert call.type == "file_search"
    results = call.file_search.results  # type: ignore[union-attr]
    assert results
    assert results[0].file_id == file_id
    assert results[0].file_name == "guide.txt"
    assert 0 < results[0].score <= 1
    assert results[0].content is None
    assert call.file_search.ranking_options is not None  # type: ignore[union-attr]

    with_content = client.beta.threads.runs.steps.list(
        run.id, thread_id=thread.id, order="asc", include=[INCLUDE]
    ).data[0]
    (call,) = with_content.step_details.tool_calls  # type: ignore[union-attr]
    content = call.file_search.results[0].content  # type: ignore[union-attr]
    assert content
    assert "fog horn" in content[0].text
    one = client.beta.threads.runs.steps.retrieve(
        steps[0].id, thread_id=thread.id, run_id=run.id, include=[INCLUDE]
    )
    assert one.step_details.tool_calls[0].file_search.results[0].content  # type: ignore[union-attr]


def test_thread_attachments_are_searched_with_tagged_markers(
    client: OpenAI, model: ScriptedModel
) -> None:
    pdf = make_pdf([["Maintenance log."], ["The boiler pressure limit is 42 bar."]])
    uploaded = client.files.create(file=("log.pdf", pdf), purpose="assistants")
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "fs-attach: what is the boiler pressure limit?",
                "attachments": [{"file_id": uploaded.id, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    store_id = thread.tool_resources.file_search.vector_store_ids[0]  # type: ignore[union-attr,index]
    client.vector_stores.files.poll(uploaded.id, vector_store_id=store_id, poll_interval_ms=50)
    model.script(
        "fs-attach",
        Reply(tool_calls=[ToolCall("file_search", '{"queries": ["boiler pressure limit"]}')]),
        Reply(text="It is 42 bar 【zzzz:0†log.pdf】."),  # an unknown tag: matched by file name
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )
    assert run.status == "completed", run.last_error
    text = client.beta.threads.messages.list(thread.id, limit=1).data[0].content[0].text  # type: ignore[union-attr]
    (citation,) = text.annotations
    assert citation.file_citation.file_id == uploaded.id  # type: ignore[union-attr]
    assert text.value[citation.start_index : citation.end_index] == "【zzzz:0†log.pdf】"


def test_streamed_run_ends_with_annotated_message(client: OpenAI, model: ScriptedModel) -> None:
    store_id, file_id = _store_with(client, "guide.txt", GUIDE.encode())
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    )
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "fs-stream: when is the lamp lit?"}]
    )
    model.script(
        "fs-stream",
        Reply(tool_calls=[ToolCall("file_search", '{"queries": ["lamp lit sunset"]}')]),
        Reply(text=["Thirty minutes ", "before sunset ", "【0†guide.txt】."]),
    )
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        events = [event.event for event in stream]
        final = stream.get_final_messages()
    assert "thread.run.step.delta" in events
    assert events[-1] == "thread.run.completed"
    annotations = final[-1].content[0].text.annotations  # type: ignore[union-attr]
    assert [a.file_citation.file_id for a in annotations] == [file_id]  # type: ignore[union-attr]


def test_no_store_tells_the_model(client: OpenAI, model: ScriptedModel) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "fs-none: hi"}])
    model.script(
        "fs-none",
        Reply(tool_calls=[ToolCall("file_search", '{"queries": ["anything"]}')]),
        Reply(text="Nothing to search."),
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )
    assert run.status == "completed", run.last_error
    tool_output = next(m for m in model.requests("fs-none")[1]["messages"] if m["role"] == "tool")[
        "content"
    ]
    assert "no vector store" in tool_output

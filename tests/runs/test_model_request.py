"""What assistantd sends the model backend for a run (read back from the scripted model)."""

from __future__ import annotations

import base64
from typing import Any

from openai import OpenAI
from openai.types.beta import Assistant

from tests.runs.conftest import PNG, function_tool
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall


def test_request_basics(client: OpenAI, model: ScriptedModel, marker: str) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Sys.")
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": f"{marker} one"},
            {"role": "assistant", "content": "two"},
            {"role": "user", "content": [{"type": "text", "text": "three"}]},
        ]
    )
    client.beta.threads.messages.create(thread.id, role="user", content="four")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    [sent] = model.requests(marker)
    assert sent["model"] == "gpt-4o"
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == [
        {"role": "system", "content": "Sys."},
        {"role": "user", "content": f"{marker} one"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three"},
        {"role": "user", "content": "four"},
    ]
    for absent in ("tools", "tool_choice", "parallel_tool_calls", "max_tokens", "response_format"):
        assert absent not in sent
    [headers] = model.headers(marker)
    assert headers["authorization"] == "Bearer sk-scripted"


def test_earlier_runs_are_history(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"{marker} q1"}])
    model.script(marker, Reply(text="a1"), Reply(text="a2"))
    client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    client.beta.threads.messages.create(thread.id, role="user", content="q2")
    client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert model.requests(marker)[-1]["messages"][1:] == [
        {"role": "user", "content": f"{marker} q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
    ]


def test_images_become_vision_content(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    uploaded = client.files.create(file=("pixel.png", PNG, "image/png"), purpose="vision")
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"{marker} what is this?"},
                    {"type": "image_file", "image_file": {"file_id": uploaded.id, "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            }
        ]
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    user = model.requests(marker)[-1]["messages"][1]
    assert user["role"] == "user"
    text, from_file, from_url = user["content"]
    assert text == {"type": "text", "text": f"{marker} what is this?"}
    assert from_file["type"] == "image_url"
    assert from_file["image_url"]["detail"] == "low"
    url = from_file["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == PNG
    assert from_url["type"] == "image_url"
    assert from_url["image_url"]["url"] == "https://example.com/cat.png"
    assert from_url["image_url"].get("detail", "auto") == "auto"


def test_tools_are_sent_as_functions(client: OpenAI, model: ScriptedModel, marker: str) -> None:
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[
            function_tool("lookup", "Looks things up."),
            {"type": "function", "function": {"name": "bare"}},
            {
                "type": "function",
                "function": {
                    "name": "strict_one",
                    "parameters": {
                        "type": "object",
                        "properties": {"x": {"type": "integer"}},
                        "required": ["x"],
                        "additionalProperties": False,
                    },
                    "strict": True,
                },
            },
        ],
    )
    sent = run_with(client, assistant, model, marker)
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": function_tool("lookup")["function"]["parameters"],
                "description": "Looks things up.",
            },
        },
        {
            "type": "function",
            "function": {"name": "bare", "parameters": {"type": "object", "properties": {}}},
        },
        {
            "type": "function",
            "function": {
                "name": "strict_one",
                "parameters": {
                    "type": "object",
                    "properties": {"x": {"type": "integer"}},
                    "required": ["x"],
                    "additionalProperties": False,
                },
                "strict": True,
            },
        },
    ]
    assert sent["tool_choice"] == "auto"
    assert sent["parallel_tool_calls"] is True


def run_with(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str, **options: Any
) -> dict[str, Any]:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, **options
    )
    assert run.status in {"completed", "requires_action"}, run.last_error
    if run.status == "requires_action":
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    return model.requests(marker)[-1]


def test_tool_choice_mapping(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    cases: list[tuple[Any, Any]] = [
        ("none", "none"),
        ("auto", "auto"),
        ("required", "required"),
        (
            {"type": "function", "function": {"name": "lookup"}},
            {"type": "function", "function": {"name": "lookup"}},
        ),
    ]
    for index, (given, expected) in enumerate(cases):
        mark = f"{marker}-{index}"
        sent = run_with(client, assistant, model, mark, tool_choice=given)
        assert sent["tool_choice"] == expected, given


def test_required_tool_choice_is_relaxed_after_the_tool_ran(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    """Forcing a tool on every turn would loop forever: after a tool step the model may answer."""
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    model.script(marker, Reply(tool_calls=[ToolCall("lookup", "{}")]), Reply(text="done"))
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tool_choice="required"
    )
    assert run.status == "requires_action"
    call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "x"}]
    )
    assert run.status == "completed"
    assert [r["tool_choice"] for r in model.requests(marker)] == ["required", "auto"]
    assert run.tool_choice == "required"  # the run still echoes what was asked


def test_sampling_and_limits(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    sent = run_with(
        client,
        assistant,
        model,
        marker,
        temperature=0.25,
        top_p=0.75,
        parallel_tool_calls=False,
        max_completion_tokens=500,
        reasoning_effort="low",
    )
    assert sent["temperature"] == 0.25
    assert sent["top_p"] == 0.75
    assert sent["parallel_tool_calls"] is False
    assert sent["max_tokens"] == 500
    assert sent["reasoning_effort"] == "low"


def test_max_tokens_is_what_is_left_of_the_run_budget(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    model.script(
        marker,
        Reply(tool_calls=[ToolCall("lookup", "{}")], usage=(30, 40)),
        Reply(text="ok", usage=(50, 2)),
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=500
    )
    call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "x"}]
    )
    assert run.status == "completed"
    assert [r["max_tokens"] for r in model.requests(marker)] == [500, 460]
    assert run.usage is not None
    assert run.usage.model_dump() == {
        "prompt_tokens": 80,
        "completion_tokens": 42,
        "total_tokens": 122,
    }


def test_response_formats_pass_through(
    client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
) -> None:
    sent = run_with(
        client, assistant, model, f"{marker}-o", response_format={"type": "json_object"}
    )
    assert sent["response_format"] == {"type": "json_object"}
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    fmt = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "description": "An answer.",
            "schema": schema,
            "strict": True,
        },
    }
    sent = run_with(client, assistant, model, f"{marker}-s", response_format=fmt)
    assert sent["response_format"] == fmt
    for index, plain in enumerate(["auto", {"type": "text"}]):
        sent = run_with(client, assistant, model, f"{marker}-p{index}", response_format=plain)
        assert sent.get("response_format") in (None, {"type": "text"})

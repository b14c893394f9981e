from openai import OpenAI

from tests.support.scripted_model import Reply, ScriptedModel, ToolCall


def test_text_run_and_function_call(client: OpenAI, model: ScriptedModel) -> None:
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "smoke-1 hi"}])
    model.script("smoke-1", Reply(text=["Hello", " world"]))
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )
    assert run.status == "completed", run.last_error
    messages = list(client.beta.threads.messages.list(thread.id, order="asc"))
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].content[0].text.value == "Hello world"

    client.beta.threads.messages.create(thread.id, role="user", content="smoke-2 weather?")
    model.script(
        "smoke-2",
        Reply(tool_calls=[ToolCall("get_weather", '{"city": "Paris"}')]),
        Reply(text="Sunny in Paris."),
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )
    assert run.status == "requires_action"
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}],
        poll_interval_ms=20,
    )
    assert run.status == "completed", run.last_error
    assert run.usage is not None


def test_thread_is_locked_while_a_run_is_active(client: OpenAI, model: ScriptedModel) -> None:
    import openai
    import pytest

    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "smoke-lock"}])
    model.script("smoke-lock", Reply(tool_calls=[ToolCall("lookup", "{}")]))
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )
    assert run.status == "requires_action"
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.messages.create(thread.id, role="user", content="more")
    assert caught.value.message.endswith(
        f"Can't add messages to {thread.id} while a run {run.id} is active."
    )
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert f"Thread {thread.id} already has an active run {run.id}." in caught.value.message
    cancelled = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelled.status == "cancelled"
    client.beta.threads.messages.create(thread.id, role="user", content="now it works")


def test_later_runs_see_earlier_tool_calls(client: OpenAI, model: ScriptedModel) -> None:
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "smoke-ctx"}])
    model.script(
        "smoke-ctx",
        Reply(tool_calls=[ToolCall("lookup", '{"q": 1}')]),
        Reply(text="Looked it up."),
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "forty-two"}],
        poll_interval_ms=20,
    )
    client.beta.threads.messages.create(thread.id, role="user", content="smoke-ctx-2 again?")
    model.script("smoke-ctx-2", Reply(text="Same as before."))
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )
    assert run.status == "completed", run.last_error
    sent = model.requests("smoke-ctx-2")[-1]["messages"]
    roles = [m["role"] for m in sent]
    assert roles == ["user", "assistant", "tool", "assistant", "user"]
    assert sent[1]["tool_calls"][0]["id"] == call.id
    assert sent[2] == {"role": "tool", "tool_call_id": call.id, "content": "forty-two"}

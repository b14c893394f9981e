"""Threads are conversations and back: what one API writes, the other reads and continues."""

from __future__ import annotations

import json

import pytest
from openai import BadRequestError, OpenAI
from openai.types.beta import Assistant

from tests.conversations.conftest import chat_texts, listed, texts
from tests.runs.conftest import function_tool, wait_until
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall

INSTRUCTIONS = "You are terse."


@pytest.fixture
def assistant(client: OpenAI) -> Assistant:
    return client.beta.assistants.create(
        model="gpt-4o", instructions=INSTRUCTIONS, tools=[function_tool("lookup")]
    )


def message_texts(client: OpenAI, thread_id: str) -> list[tuple[str, str]]:
    """A thread's messages through the Assistants API, oldest first, as (role, text)."""
    out = []
    for message in client.beta.threads.messages.list(thread_id, order="asc"):
        [part] = message.content
        assert part.type == "text"
        out.append((message.role, part.text.value))
    return out


class TestThreadsAsConversations:
    def test_a_thread_is_a_conversation(self, client: OpenAI) -> None:
        thread = client.beta.threads.create(metadata={"from": "assistants"})
        conversation = client.conversations.retrieve(thread.id)
        assert conversation.id == thread.id
        assert conversation.object == "conversation"
        assert conversation.created_at == thread.created_at
        assert conversation.metadata == {"from": "assistants"}
        client.conversations.update(thread.id, metadata={"from": "conversations"})
        assert client.beta.threads.retrieve(thread.id).metadata == {"from": "conversations"}

    def test_a_run_is_listed_as_message_items(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(marker, Reply(text="plain answer"))
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "completed", run.last_error
        messages = client.beta.threads.messages.list(thread.id, order="asc").data
        items = listed(client, thread.id)
        assert [item["id"] for item in items] == [m.id for m in messages]
        assert [(item["type"], item["role"], item["status"]) for item in items] == [
            ("message", "user", "completed"),
            ("message", "assistant", "completed"),
        ]
        assert items[0]["content"] == [{"type": "input_text", "text": marker}]
        [answer] = items[1]["content"]
        assert answer["type"] == "output_text"
        assert answer["text"] == "plain answer"
        # and one by one
        got = client.conversations.items.retrieve(messages[1].id, conversation_id=thread.id)
        assert got.model_dump(exclude_unset=True) == items[1]

    def test_function_calls_are_listed_as_call_and_output_items(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(
            marker, Reply(tool_calls=[ToolCall("lookup", '{"q": "x"}')]), Reply(text="found it")
        )
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "requires_action", run.last_error
        assert run.required_action is not None
        [tool_call] = run.required_action.submit_tool_outputs.tool_calls
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id,
            thread_id=thread.id,
            tool_outputs=[{"tool_call_id": tool_call.id, "output": "the result"}],
        )
        assert run.status == "completed", run.last_error

        items = listed(client, thread.id)
        assert [item["type"] for item in items] == [
            "message",
            "function_call",
            "function_call_output",
            "message",
        ]
        question, call, output, answer = items
        assert question["role"] == "user"
        assert texts(question) == [marker]
        assert call["id"].startswith("fc_")
        assert call["call_id"] == tool_call.id
        assert call["name"] == "lookup"
        assert json.loads(call["arguments"]) == {"q": "x"}
        assert call["status"] == "completed"
        assert output["call_id"] == tool_call.id
        assert output["output"] == "the result"
        assert output["status"] == "completed"
        assert answer["role"] == "assistant"
        assert texts(answer) == ["found it"]
        # the Assistants API still shows only the messages
        assert message_texts(client, thread.id) == [("user", marker), ("assistant", "found it")]

    def test_a_response_continues_a_thread(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(
            marker,
            Reply(tool_calls=[ToolCall("lookup", '{"q": "x"}')]),
            Reply(text="found it"),
            Reply(text="continued by a response"),
            Reply(text="and by a run again"),
        )
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.required_action is not None
        [tool_call] = run.required_action.submit_tool_outputs.tool_calls
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id,
            thread_id=thread.id,
            tool_outputs=[{"tool_call_id": tool_call.id, "output": "42"}],
        )
        assert run.status == "completed", run.last_error

        response = client.responses.create(
            model="gpt-4o", conversation=thread.id, input="follow-up question"
        )
        assert response.status == "completed"
        assert response.output_text == "continued by a response"
        assert response.conversation is not None
        assert response.conversation.id == thread.id
        # the response saw the thread, tool call included, without the assistant's instructions
        assert chat_texts(model.requests(marker)[-1]) == [
            ("user", marker),
            ("call", f'{tool_call.id}:lookup({{"q": "x"}})'),
            ("tool", f"{tool_call.id}=42"),
            ("assistant", "found it"),
            ("user", "follow-up question"),
        ]
        # the new turn is in the thread's messages
        messages = client.beta.threads.messages.list(thread.id, order="asc").data
        assert messages[-1].id == response.output[0].id
        assert message_texts(client, thread.id) == [
            ("user", marker),
            ("assistant", "found it"),
            ("user", "follow-up question"),
            ("assistant", "continued by a response"),
        ]

        # and an Assistants run after it sees the response's turn
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "completed", run.last_error
        assert chat_texts(model.requests(marker)[-1]) == [
            ("system", INSTRUCTIONS),
            ("user", marker),
            ("call", f'{tool_call.id}:lookup({{"q": "x"}})'),
            ("tool", f"{tool_call.id}=42"),
            ("assistant", "found it"),
            ("user", "follow-up question"),
            ("assistant", "continued by a response"),
        ]
        assert message_texts(client, thread.id)[-1] == ("assistant", "and by a run again")

    def test_a_run_on_a_conversation_sees_its_items(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        conversation = client.conversations.create(
            items=[
                {"role": "user", "content": f"{marker} what is the weather?"},
                {
                    "type": "function_call",
                    "call_id": "call_conv1",
                    "name": "lookup",
                    "arguments": '{"q": "weather"}',
                },
                {"type": "function_call_output", "call_id": "call_conv1", "output": "rain"},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "It rains."}],
                },
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "Umbrella?"}],
                },
            ]
        )
        thread = client.beta.threads.retrieve(conversation.id)
        assert thread.id == conversation.id
        assert thread.object == "thread"

        model.script(marker, Reply(text="Yes, take one."))
        run = client.beta.threads.runs.create_and_poll(
            thread_id=conversation.id, assistant_id=assistant.id
        )
        assert run.status == "completed", run.last_error
        assert run.thread_id == conversation.id
        assert chat_texts(model.requests(marker)[-1]) == [
            ("system", INSTRUCTIONS),
            ("user", f"{marker} what is the weather?"),
            ("call", 'call_conv1:lookup({"q": "weather"})'),
            ("tool", "call_conv1=rain"),
            ("assistant", "It rains."),
            ("user", "Umbrella?"),
        ]
        # the run's answer joins the conversation
        items = listed(client, conversation.id)
        assert len(items) == 6
        assert items[-1]["role"] == "assistant"
        assert texts(items[-1]) == ["Yes, take one."]
        # messages of the Assistants API: the conversation's messages, not its tool items
        assert message_texts(client, conversation.id) == [
            ("user", f"{marker} what is the weather?"),
            ("assistant", "It rains."),
            ("user", "Umbrella?"),
            ("assistant", "Yes, take one."),
        ]

    def test_messages_added_by_either_api_are_seen_by_both(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        conversation = client.conversations.create(items=[{"role": "user", "content": marker}])
        message = client.beta.threads.messages.create(
            conversation.id, role="user", content="added as a message"
        )
        items = listed(client, conversation.id)
        assert items[-1]["id"] == message.id
        assert texts(items[-1]) == ["added as a message"]
        model.script(marker, Reply(text="ok"))
        response = client.responses.create(model="gpt-4o", conversation=conversation.id, input="x")
        assert response.status == "completed"
        assert chat_texts(model.requests(marker)[-1]) == [
            ("user", marker),
            ("user", "added as a message"),
            ("user", "x"),
        ]


class TestOneActiveRunAtATime:
    def test_a_thread_with_an_active_run_refuses_a_response(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        model.script(marker, Reply(tool_calls=[ToolCall("lookup", "{}")]), Reply(text="done"))
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "requires_action", run.last_error
        with pytest.raises(BadRequestError) as exc:
            client.responses.create(model="gpt-4o", conversation=thread.id, input="meanwhile")
        assert exc.value.body["type"] == "invalid_request_error"  # type: ignore[index]
        assert run.id in exc.value.body["message"]  # type: ignore[index]
        # nor items through the Conversations API: they would land between the call and its
        # output
        with pytest.raises(BadRequestError) as exc:
            client.conversations.items.create(thread.id, items=[{"role": "user", "content": "x"}])
        assert run.id in exc.value.body["message"]  # type: ignore[index]
        # nothing was added
        assert [item["type"] for item in listed(client, thread.id)] == ["message", "function_call"]

        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
        wait_until(
            lambda: client.beta.threads.runs.retrieve(run.id, thread_id=thread.id),
            lambda r: r.status == "cancelled",
            what="the run to be cancelled",
        )
        # free again
        model.script(f"{marker}-after", Reply(text="after the run"))
        response = client.responses.create(
            model="gpt-4o", conversation=thread.id, input=f"{marker}-after"
        )
        assert response.output_text == "after the run"

    def test_a_conversation_with_an_active_response_refuses_a_run(
        self, client: OpenAI, assistant: Assistant, model: ScriptedModel, marker: str
    ) -> None:
        conversation = client.conversations.create()
        model.script(marker, Reply(text="thinking", hang=True))
        response = client.responses.create(
            model="gpt-4o", conversation=conversation.id, input=marker, background=True
        )
        try:
            wait_until(
                lambda: client.responses.retrieve(response.id),
                lambda r: r.status == "in_progress",
                what="the response to start",
            )
            model.wait_requests(1, marker)
            with pytest.raises(BadRequestError) as exc:
                client.beta.threads.runs.create(
                    thread_id=conversation.id, assistant_id=assistant.id
                )
            assert response.id in exc.value.body["message"]  # type: ignore[index]
            with pytest.raises(BadRequestError) as exc:
                client.beta.threads.messages.create(
                    conversation.id, role="user", content="meanwhile"
                )
            assert response.id in exc.value.body["message"]  # type: ignore[index]
            with pytest.raises(BadRequestError) as exc:
                client.responses.create(model="gpt-4o", conversation=conversation.id, input="again")
            assert response.id in exc.value.body["message"]  # type: ignore[index]
            with pytest.raises(BadRequestError) as exc:
                client.conversations.items.create(
                    conversation.id, items=[{"role": "user", "content": "again"}]
                )
            assert response.id in exc.value.body["message"]  # type: ignore[index]
        finally:
            cancelled = client.responses.cancel(response.id)  # the model hangs until then
        assert cancelled.status == "cancelled"
        # the conversation takes runs again
        model.script(f"{marker}-run", Reply(text="a run now"))
        client.beta.threads.messages.create(conversation.id, role="user", content=f"{marker}-run")
        run = client.beta.threads.runs.create_and_poll(
            thread_id=conversation.id, assistant_id=assistant.id
        )
        assert run.status == "completed", run.last_error
        assert message_texts(client, conversation.id)[-2:] == [
            ("user", f"{marker}-run"),
            ("assistant", "a run now"),
        ]

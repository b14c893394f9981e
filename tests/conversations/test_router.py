"""The Conversations API through the official client: conversations, their items, and
responses that run on them (`conversation=`)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from openai import BadRequestError, NotFoundError, OpenAI

from tests.conversations.conftest import chat_texts, listed, texts
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall

CONVERSATION_KEYS = {"id", "object", "created_at", "metadata"}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def not_found(exc: pytest.ExceptionInfo[NotFoundError], message: str) -> None:
    assert exc.value.status_code == 404
    assert exc.value.body == {
        "message": message,
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


class TestCreate:
    def test_empty(self, client: OpenAI) -> None:
        before = int(time.time())
        conversation = client.conversations.create()
        assert conversation.id.startswith("conv_")
        assert conversation.object == "conversation"
        assert set(conversation.model_dump(exclude_unset=True)) == CONVERSATION_KEYS
        assert conversation.metadata == {}
        assert isinstance(conversation.created_at, int)
        assert before - 1 <= conversation.created_at <= int(time.time()) + 1
        assert client.conversations.items.list(conversation.id).data == []

    def test_empty_item_list(self, client: OpenAI) -> None:
        """The Agents SDK's session creates its conversation with `{"items": []}`."""
        conversation = client.conversations.create(items=[])
        assert client.conversations.items.list(conversation.id).data == []

    def test_metadata_and_items_of_several_shapes(self, client: OpenAI) -> None:
        conversation = client.conversations.create(
            metadata={"topic": "weather", "user": "u-1"},
            items=[
                {"role": "developer", "content": "Answer in French."},
                user("plain string"),
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "two"},
                        {"type": "input_text", "text": "parts"},
                    ],
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "an answer", "annotations": []}],
                },
                {
                    "type": "function_call",
                    "call_id": "call_given1",
                    "name": "get_weather",
                    "arguments": '{"city": "Paris"}',
                },
                {"type": "function_call_output", "call_id": "call_given1", "output": "sunny"},
                {"role": "system", "content": [{"type": "input_text", "text": "system says"}]},
            ],
        )
        assert conversation.metadata == {"topic": "weather", "user": "u-1"}
        items = listed(client, conversation.id)
        assert [item["type"] for item in items] == [
            "message",
            "message",
            "message",
            "message",
            "function_call",
            "function_call_output",
            "message",
        ]
        messages = [item for item in items if item["type"] == "message"]
        assert [m["role"] for m in messages] == ["developer", "user", "user", "assistant", "system"]
        for message in messages:
            assert message["id"].startswith("msg_")
            assert message["status"] == "completed"
        # string content is stored as one input_text part
        assert messages[1]["content"] == [{"type": "input_text", "text": "plain string"}]
        assert [p["type"] for p in messages[2]["content"]] == ["input_text", "input_text"]
        assert texts(messages[2]) == ["two", "parts"]
        [answer] = messages[3]["content"]
        assert answer["type"] == "output_text"
        assert answer["text"] == "an answer"
        assert answer["annotations"] == []
        assert texts(messages[4]) == ["system says"]
        call, output = items[4], items[5]
        assert call["id"].startswith("fc_")
        assert call["call_id"] == "call_given1"
        assert call["name"] == "get_weather"
        assert json.loads(call["arguments"]) == {"city": "Paris"}
        assert call["status"] == "completed"
        assert output["call_id"] == "call_given1"
        assert output["output"] == "sunny"
        assert output["id"] not in {item["id"] for item in items[:5]}
        assert len({item["id"] for item in items}) == len(items)

    def test_twenty_items_at_most(self, client: OpenAI) -> None:
        twenty = [user(f"item {n}") for n in range(20)]
        conversation = client.conversations.create(items=twenty)
        items = listed(client, conversation.id)
        assert [texts(item) for item in items] == [[f"item {n}"] for n in range(20)]
        with pytest.raises(BadRequestError) as exc:
            client.conversations.create(items=[*twenty, user("one too many")])
        assert exc.value.body["param"] == "items"  # type: ignore[index]
        assert "maximum length 20" in exc.value.body["message"]  # type: ignore[index]

    def test_bad_item_is_400(self, client: OpenAI) -> None:
        with pytest.raises(BadRequestError) as exc:
            client.conversations.create(items=[{"type": "bogus_item", "id": "x"}])  # type: ignore[list-item]
        assert exc.value.body["type"] == "invalid_request_error"  # type: ignore[index]
        assert str(exc.value.body["param"]).startswith("items[0]")  # type: ignore[index]


class TestRetrieve:
    def test_retrieve(self, client: OpenAI) -> None:
        created = client.conversations.create(metadata={"k": "v"})
        got = client.conversations.retrieve(created.id)
        assert got == created
        assert set(got.model_dump(exclude_unset=True)) == CONVERSATION_KEYS

    def test_unknown(self, client: OpenAI) -> None:
        with pytest.raises(NotFoundError) as exc:
            client.conversations.retrieve("conv_doesnotexist")
        not_found(exc, "Conversation with id 'conv_doesnotexist' not found.")


class TestUpdate:
    def test_metadata_is_replaced(self, client: OpenAI) -> None:
        conversation = client.conversations.create(metadata={"a": "1", "b": "2"})
        updated = client.conversations.update(conversation.id, metadata={"c": "3"})
        assert updated.id == conversation.id
        assert updated.created_at == conversation.created_at
        assert updated.metadata == {"c": "3"}
        assert client.conversations.retrieve(conversation.id).metadata == {"c": "3"}

    def test_unknown(self, client: OpenAI) -> None:
        with pytest.raises(NotFoundError) as exc:
            client.conversations.update("conv_nope", metadata={"a": "1"})
        not_found(exc, "Conversation with id 'conv_nope' not found.")


class TestDelete:
    def test_delete(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        conversation = client.conversations.create(items=[user("before")])
        model.script(marker, Reply(text="kept answer"))
        response = client.responses.create(
            model="gpt-4o", conversation=conversation.id, input=marker
        )
        assert response.status == "completed"

        deleted = client.conversations.delete(conversation.id)
        assert deleted.model_dump(exclude_unset=True) == {
            "id": conversation.id,
            "object": "conversation.deleted",
            "deleted": True,
        }
        message = f"Conversation with id '{conversation.id}' not found."
        for call in (
            lambda: client.conversations.retrieve(conversation.id),
            lambda: client.conversations.items.list(conversation.id),
            lambda: client.conversations.update(conversation.id, metadata={}),
            lambda: client.conversations.items.create(conversation.id, items=[user("x")]),
            lambda: client.conversations.delete(conversation.id),  # not idempotent
        ):
            with pytest.raises(NotFoundError) as exc:
                call()
            not_found(exc, message)
        with pytest.raises(NotFoundError) as exc:
            client.responses.create(model="gpt-4o", conversation=conversation.id, input="again")
        not_found(exc, message)

        # the response that ran on it stays, with its output
        kept = client.responses.retrieve(response.id)
        assert kept.status == "completed"
        assert kept.output_text == "kept answer"
        assert [item.id for item in kept.output] == [item.id for item in response.output]


class TestItemsCreate:
    def test_answer_is_a_list_in_input_order(self, client: OpenAI) -> None:
        conversation = client.conversations.create(items=[user("first")])
        added = client.conversations.items.create(
            conversation.id,
            items=[
                user("second"),
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "third"}],
                },
                {
                    "type": "function_call",
                    "call_id": "call_x1",
                    "name": "get_weather",
                    "arguments": "{}",
                },
                {"type": "function_call_output", "call_id": "call_x1", "output": "fourth"},
            ],
        )
        assert added.object == "list"
        assert added.has_more is False
        assert [item.type for item in added.data] == [
            "message",
            "message",
            "function_call",
            "function_call_output",
        ]
        assert added.first_id == added.data[0].id
        assert added.last_id == added.data[-1].id
        items = listed(client, conversation.id)
        assert [item["id"] for item in items[1:]] == [item.id for item in added.data]
        assert [item.model_dump(exclude_unset=True) for item in added.data] == items[1:]
        assert texts(items[0]) == ["first"]
        assert texts(items[1]) == ["second"]
        assert texts(items[2]) == ["third"]
        assert items[4]["output"] == "fourth"

    def test_twenty_at_most(self, client: OpenAI) -> None:
        conversation = client.conversations.create()
        added = client.conversations.items.create(
            conversation.id, items=[user(str(n)) for n in range(20)]
        )
        assert len(added.data) == 20
        with pytest.raises(BadRequestError) as exc:
            client.conversations.items.create(
                conversation.id, items=[user(str(n)) for n in range(21)]
            )
        assert exc.value.body["param"] == "items"  # type: ignore[index]
        assert len(listed(client, conversation.id)) == 20

    def test_unknown_conversation(self, client: OpenAI) -> None:
        with pytest.raises(NotFoundError) as exc:
            client.conversations.items.create("conv_nope", items=[user("x")])
        not_found(exc, "Conversation with id 'conv_nope' not found.")


@pytest.fixture
def forty_five(client: OpenAI) -> tuple[str, list[str]]:
    """A conversation of 45 messages ("0" to "44") and their ids, oldest first."""
    conversation = client.conversations.create(items=[user(str(n)) for n in range(20)])
    ids = [item["id"] for item in listed(client, conversation.id)]
    for start in (20, 40):
        end = min(start + 20, 45)
        added = client.conversations.items.create(
            conversation.id, items=[user(str(n)) for n in range(start, end)]
        )
        ids += [item.id for item in added.data]
    return conversation.id, ids


class TestItemsList:
    def test_default_order_is_desc(self, client: OpenAI, forty_five: tuple[str, list[str]]) -> None:
        conversation_id, ids = forty_five
        page = client.conversations.items.list(conversation_id)
        assert page.object == "list"
        assert [item.id for item in page.data] == ids[::-1][:20]  # default limit 20
        assert page.has_more is True
        assert page.first_id == ids[-1]
        assert page.last_id == ids[-20]

    def test_asc_and_limit(self, client: OpenAI, forty_five: tuple[str, list[str]]) -> None:
        conversation_id, ids = forty_five
        page = client.conversations.items.list(conversation_id, order="asc", limit=7)
        assert [item.id for item in page.data] == ids[:7]
        assert [texts(item.model_dump()) for item in page.data] == [[str(n)] for n in range(7)]
        assert page.has_more is True
        page = client.conversations.items.list(conversation_id, order="asc", limit=100)
        assert [item.id for item in page.data] == ids
        assert page.has_more is False

    @pytest.mark.parametrize("order", ["asc", "desc"])
    def test_after_cursor_and_auto_pagination(
        self, client: OpenAI, forty_five: tuple[str, list[str]], order: str
    ) -> None:
        conversation_id, ids = forty_five
        expected = ids if order == "asc" else ids[::-1]
        pager = client.conversations.items.list(conversation_id, order=order, limit=10)  # type: ignore[arg-type]
        pages = list(pager.iter_pages())
        assert [len(page.data) for page in pages] == [10, 10, 10, 10, 5]
        assert [page.has_more for page in pages] == [True, True, True, True, False]
        assert [item.id for item in pager] == expected
        # `after` by hand, from the middle
        page = client.conversations.items.list(
            conversation_id,
            order=order,  # type: ignore[arg-type]
            after=expected[12],
            limit=5,
        )
        assert [item.id for item in page.data] == expected[13:18]
        last = client.conversations.items.list(
            conversation_id,
            order=order,  # type: ignore[arg-type]
            after=expected[-1],
        )
        assert last.data == []
        assert last.has_more is False

    def test_limit_bounds(self, client: OpenAI) -> None:
        conversation = client.conversations.create()
        for limit in (0, 101):
            with pytest.raises(BadRequestError) as exc:
                client.conversations.items.list(conversation.id, limit=limit)
            assert exc.value.body["param"] == "limit"  # type: ignore[index]

    def test_unknown_conversation(self, client: OpenAI) -> None:
        with pytest.raises(NotFoundError) as exc:
            client.conversations.items.list("conv_nope")
        not_found(exc, "Conversation with id 'conv_nope' not found.")


class TestItemRetrieve:
    def test_retrieve(self, client: OpenAI) -> None:
        conversation = client.conversations.create(
            items=[
                user("hello"),
                {"type": "function_call", "call_id": "call_r1", "name": "f", "arguments": "{}"},
            ]
        )
        items = listed(client, conversation.id)
        for item in items:
            got = client.conversations.items.retrieve(item["id"], conversation_id=conversation.id)
            assert got.model_dump(exclude_unset=True) == item

    def test_unknown_or_of_another_conversation(self, client: OpenAI) -> None:
        one = client.conversations.create(items=[user("one")])
        two = client.conversations.create()
        [item] = listed(client, one.id)
        with pytest.raises(NotFoundError) as exc:
            client.conversations.items.retrieve("msg_nope", conversation_id=one.id)
        not_found(exc, "Item with id 'msg_nope' not found.")
        with pytest.raises(NotFoundError) as exc:
            client.conversations.items.retrieve(item["id"], conversation_id=two.id)
        not_found(exc, f"Item with id '{item['id']}' not found.")


class TestItemDelete:
    def test_delete(self, client: OpenAI) -> None:
        conversation = client.conversations.create(
            metadata={"k": "v"}, items=[user("a"), user("b"), user("c")]
        )
        a, b, c = (item["id"] for item in listed(client, conversation.id))
        answer = client.conversations.items.delete(b, conversation_id=conversation.id)
        assert answer.model_dump(exclude_unset=True) == conversation.model_dump(exclude_unset=True)
        assert [item["id"] for item in listed(client, conversation.id)] == [a, c]
        with pytest.raises(NotFoundError) as exc:
            client.conversations.items.retrieve(b, conversation_id=conversation.id)
        not_found(exc, f"Item with id '{b}' not found.")
        with pytest.raises(NotFoundError) as exc:
            client.conversations.items.delete(b, conversation_id=conversation.id)
        not_found(exc, f"Item with id '{b}' not found.")
        # a deleted item still works as a cursor
        page = client.conversations.items.list(conversation.id, order="asc", after=b)
        assert [item.id for item in page.data] == [c]

    def test_the_model_no_longer_sees_it(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        conversation = client.conversations.create(
            items=[user(f"{marker} keep"), user(f"{marker} forget")]
        )
        _, forget = (item["id"] for item in listed(client, conversation.id))
        client.conversations.items.delete(forget, conversation_id=conversation.id)
        model.script(marker, Reply(text="ok"))
        response = client.responses.create(
            model="gpt-4o", conversation=conversation.id, input="next"
        )
        assert response.status == "completed"
        assert chat_texts(model.requests(marker)[-1]) == [
            ("user", f"{marker} keep"),
            ("user", "next"),
        ]

    def test_a_responses_item_stays_with_the_response(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        conversation = client.conversations.create()
        model.script(marker, Reply(text="the answer"))
        response = client.responses.create(
            model="gpt-4o", conversation=conversation.id, input=marker
        )
        question, answer = listed(client, conversation.id)
        assert answer["id"] == response.output[0].id
        client.conversations.items.delete(answer["id"], conversation_id=conversation.id)
        client.conversations.items.delete(question["id"], conversation_id=conversation.id)
        assert listed(client, conversation.id) == []
        kept = client.responses.retrieve(response.id)
        assert kept.output_text == "the answer"
        assert kept.output[0].id == answer["id"]


class TestResponsesOnAConversation:
    def test_input_and_output_are_appended_in_order(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        conversation = client.conversations.create(items=[user(f"{marker} context")])
        model.script(marker, Reply(text="answer one"))
        response = client.responses.create(
            model="gpt-4o",
            conversation=conversation.id,
            input=[user("question one"), user("and a second input item")],
        )
        assert response.status == "completed"
        assert response.conversation is not None
        assert response.conversation.id == conversation.id
        items = listed(client, conversation.id)
        assert [(item["role"], texts(item)) for item in items] == [
            ("user", [f"{marker} context"]),
            ("user", ["question one"]),
            ("user", ["and a second input item"]),
            ("assistant", ["answer one"]),
        ]
        assert items[-1]["id"] == response.output[0].id
        assert items[-1]["content"][0]["type"] == "output_text"
        assert all(item["status"] == "completed" for item in items)
        # the retrieved response still names its conversation
        retrieved = client.responses.retrieve(response.id)
        assert retrieved.conversation is not None
        assert retrieved.conversation.id == conversation.id

    def test_the_model_sees_the_whole_history(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        conversation = client.conversations.create(
            items=[{"role": "developer", "content": f"{marker} be brief"}]
        )
        model.script(marker, Reply(text="A1"), Reply(text="A2"), Reply(text="A3"))
        first = client.responses.create(model="gpt-4o", conversation=conversation.id, input="Q1")
        second = client.responses.create(
            model="gpt-4o", conversation={"id": conversation.id}, input=[user("Q2")]
        )
        third = client.responses.create(
            model="gpt-4o", conversation=conversation.id, input="Q3", instructions="Be nice."
        )
        assert [first.output_text, second.output_text, third.output_text] == ["A1", "A2", "A3"]
        assert second.conversation is not None
        assert second.conversation.id == conversation.id  # the object form, echoed as such
        seen = model.requests(marker)
        assert len(seen) == 3
        assert chat_texts(seen[0]) == [("system", f"{marker} be brief"), ("user", "Q1")]
        last = chat_texts(seen[2])
        # instructions come first, then the conversation in order, then this input
        assert last == [
            ("system", "Be nice."),
            ("system", f"{marker} be brief"),
            ("user", "Q1"),
            ("assistant", "A1"),
            ("user", "Q2"),
            ("assistant", "A2"),
            ("user", "Q3"),
        ]
        # instructions are not stored as an item
        items = listed(client, conversation.id)
        assert len(items) == 7
        assert [item["role"] for item in items] == [
            "developer",
            "user",
            "assistant",
            "user",
            "assistant",
            "user",
            "assistant",
        ]

    def test_function_call_across_two_responses(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        conversation = client.conversations.create()
        model.script(
            marker,
            Reply(tool_calls=[ToolCall("get_weather", '{"city": "Paris"}')]),
            Reply(text="It is sunny in Paris."),
        )
        first = client.responses.create(
            model="gpt-4o", conversation=conversation.id, input=marker, tools=[WEATHER]
        )
        assert first.status == "completed"
        [call] = first.output
        assert call.type == "function_call"
        items = listed(client, conversation.id)
        assert [item["type"] for item in items] == ["message", "function_call"]
        assert items[1]["call_id"] == call.call_id
        assert items[1]["id"] == call.id

        # only the output is sent: the call is found in the conversation
        second = client.responses.create(
            model="gpt-4o",
            conversation=conversation.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
            tools=[WEATHER],
        )
        assert second.output_text == "It is sunny in Paris."
        items = listed(client, conversation.id)
        assert [item["type"] for item in items] == [
            "message",
            "function_call",
            "function_call_output",
            "message",
        ]
        assert items[2]["call_id"] == call.call_id
        assert items[2]["output"] == "sunny"
        assert chat_texts(model.requests(marker)[-1]) == [
            ("user", marker),
            ("call", f'{call.call_id}:get_weather({{"city": "Paris"}})'),
            ("tool", f"{call.call_id}=sunny"),
        ]

    def test_stream_appends_before_completed(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        """The items are in the conversation by the time `response.completed` arrives."""
        conversation = client.conversations.create()
        model.script(marker, Reply(text="streamed answer"))
        with client.responses.stream(
            model="gpt-4o", conversation=conversation.id, input=marker
        ) as stream:
            for event in stream:
                if event.type == "response.completed":
                    items = listed(client, conversation.id)
                    break
            else:
                raise AssertionError("no response.completed")
        assert [(item["role"], texts(item)) for item in items] == [
            ("user", [marker]),
            ("assistant", ["streamed answer"]),
        ]

    def test_unknown_conversation(self, client: OpenAI) -> None:
        for conversation in ("conv_nope", {"id": "conv_nope"}):
            with pytest.raises(NotFoundError) as exc:
                client.responses.create(model="gpt-4o", conversation=conversation, input="hi")  # type: ignore[arg-type]
            not_found(exc, "Conversation with id 'conv_nope' not found.")

    def test_with_previous_response_id_is_400(self, client: OpenAI) -> None:
        conversation = client.conversations.create()
        first = client.responses.create(model="gpt-4o", input="hello")
        with pytest.raises(BadRequestError) as exc:
            client.responses.create(
                model="gpt-4o",
                conversation=conversation.id,
                previous_response_id=first.id,
                input="hi",
            )
        assert exc.value.body["code"] == "mutually_exclusive_parameters"  # type: ignore[index]
        assert listed(client, conversation.id) == []

    def test_failed_response_appends_nothing(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        conversation = client.conversations.create(items=[user("before")])
        model.script(marker, Reply(status=500, error_message="backend is down"))
        response = client.responses.create(
            model="gpt-4o", conversation=conversation.id, input=marker
        )
        assert response.status == "failed"
        assert [texts(item) for item in listed(client, conversation.id)] == [["before"]]

"""`previous_response_id` chains, `store`, retrieval, deletion and input items."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import BadRequestError, NotFoundError, OpenAI
from sqlalchemy import Engine, create_engine, text

from assistantd.db.engine import sync_url
from assistantd.settings import Settings
from tests.responses.conftest import weather_tool
from tests.runs.conftest import wait_until
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall


@pytest.fixture(scope="module")
def database(database_url: str) -> Iterator[Engine]:
    engine = create_engine(sync_url(Settings(database_url=database_url)))
    yield engine
    engine.dispose()


def rows_of(database: Engine, response_id: str) -> dict[str, int]:
    """How many rows the response has in the store: its run, its items, its events."""
    queries = {
        "runs": "SELECT count(*) FROM runs WHERE id = :id",
        "items": "SELECT count(*) FROM items WHERE input_of = :id OR run_id = :id",
        "run_events": "SELECT count(*) FROM run_events WHERE run_id = :id",
    }
    with database.connect() as connection:
        return {
            table: connection.execute(text(query), {"id": response_id}).scalar_one()
            for table, query in queries.items()
        }


NOTHING = {"runs": 0, "items": 0, "run_events": 0}


class TestChain:
    def test_tool_calls_are_replayed(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(
            marker,
            Reply(tool_calls=[ToolCall("get_weather", '{"city": "Oslo"}')]),
            Reply(text="It is sunny in Oslo."),
            Reply(text="You asked about Oslo."),
        )
        first = client.responses.create(
            model="gpt-4o", input=marker, tools=[weather_tool()], instructions="First rules."
        )
        [call] = first.output
        assert call.type == "function_call"
        second = client.responses.create(
            model="gpt-4o",
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
            tools=[weather_tool()],
        )
        assert second.previous_response_id == first.id
        assert second.output_text == "It is sunny in Oslo."
        third = client.responses.create(
            model="gpt-4o",
            previous_response_id=second.id,
            input="Which city did I ask about?",
            instructions="Third rules.",
        )
        assert third.output_text == "You asked about Oslo."
        first_sent, second_sent, third_sent = model.requests(marker)
        assert first_sent["messages"][0] == {"role": "system", "content": "First rules."}
        call_message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        }
        output = {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}
        # instructions are not carried over to the next response
        assert second_sent["messages"] == [
            {"role": "user", "content": marker},
            call_message,
            output,
        ]
        assert third_sent["messages"] == [
            {"role": "system", "content": "Third rules."},
            {"role": "user", "content": marker},
            call_message,
            output,
            {"role": "assistant", "content": "It is sunny in Oslo."},
            {"role": "user", "content": "Which city did I ask about?"},
        ]

    def test_a_fork_sees_only_its_own_branch(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        root = client.responses.create(model="gpt-4o", input=f"root {marker}")
        left = client.responses.create(model="gpt-4o", previous_response_id=root.id, input="left")
        right = client.responses.create(model="gpt-4o", previous_response_id=root.id, input="right")
        sent = model.requests(marker)
        assert [m["content"] for m in sent[-1]["messages"]] == [
            f"root {marker}",
            f"Echo: root {marker}",
            "right",
        ]
        assert left.output_text == "Echo: left"
        assert right.output_text == "Echo: right"

    def test_the_whole_history_replayed_as_input(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        """What the Agents SDK does without server state: every earlier item resent, output
        items with the ids and keys we sent."""
        model.script(
            marker,
            Reply(tool_calls=[ToolCall("get_weather", '{"city": "Oslo"}')]),
            Reply(text="Sunny."),
        )
        first = client.responses.create(model="gpt-4o", input=marker, tools=[weather_tool()])
        replay = [
            {"role": "user", "content": marker},
            *[item.model_dump(exclude_unset=True) for item in first.output],
            {"type": "function_call_output", "call_id": first.output[0].call_id, "output": "sunny"},  # type: ignore[union-attr]
        ]
        second = client.responses.create(model="gpt-4o", input=replay, tools=[weather_tool()])
        assert second.output_text == "Sunny."
        sent = model.requests(marker)[-1]["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant", "tool"]

    def test_unknown_previous_response(self, client: OpenAI) -> None:
        with pytest.raises(BadRequestError) as err:
            client.responses.create(model="gpt-4o", previous_response_id="resp_nope", input="hi")
        assert err.value.body == {  # type: ignore[comparison-overlap]
            "message": "Previous response with id 'resp_nope' not found.",
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }

    def test_previous_response_and_conversation_exclude_each_other(self, client: OpenAI) -> None:
        first = client.responses.create(model="gpt-4o", input="hi")
        conversation = client.conversations.create()
        with pytest.raises(BadRequestError) as err:
            client.responses.create(
                model="gpt-4o",
                previous_response_id=first.id,
                conversation=conversation.id,
                input="hi",
            )
        assert err.value.body["code"] == "mutually_exclusive_parameters"  # type: ignore[index]

    def test_an_output_for_no_call(self, client: OpenAI, marker: str) -> None:
        first = client.responses.create(model="gpt-4o", input=marker)
        with pytest.raises(BadRequestError) as err:
            client.responses.create(
                model="gpt-4o",
                previous_response_id=first.id,
                input=[{"type": "function_call_output", "call_id": "call_unknown", "output": "x"}],
            )
        assert err.value.body == {  # type: ignore[comparison-overlap]
            "message": "No tool call found for function call output with call_id call_unknown.",
            "type": "invalid_request_error",
            "param": "input",
            "code": None,
        }

    def test_an_unanswered_call(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(tool_calls=[ToolCall("get_weather", '{"city": "Oslo"}')]))
        first = client.responses.create(model="gpt-4o", input=marker, tools=[weather_tool()])
        with pytest.raises(BadRequestError) as err:
            client.responses.create(model="gpt-4o", previous_response_id=first.id, input="and?")
        assert err.value.body["message"].startswith(  # type: ignore[index]
            "No tool output found for function call call_"
        )


class TestStore:
    def test_store_false_keeps_nothing(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="Not kept."))
        response = client.responses.create(model="gpt-4o", input=marker, store=False)
        assert response.store is False
        assert response.output_text == "Not kept."
        with pytest.raises(NotFoundError) as err:
            client.responses.retrieve(response.id)
        assert err.value.body["message"] == f"Response with id '{response.id}' not found."
        with pytest.raises(NotFoundError):
            client.responses.input_items.list(response.id)
        with pytest.raises(BadRequestError) as chained:
            client.responses.create(model="gpt-4o", previous_response_id=response.id, input="x")
        assert chained.value.body["code"] == "previous_response_not_found"  # type: ignore[index]

    def test_store_false_streams(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text=["not ", "kept"]))
        with client.responses.stream(model="gpt-4o", input=marker, store=False) as stream:
            final = stream.get_final_response()
        assert final.output_text == "not kept"
        with pytest.raises(NotFoundError):
            client.responses.retrieve(final.id)

    def test_store_false_leaves_no_rows(
        self, client: OpenAI, model: ScriptedModel, marker: str, database: Engine
    ) -> None:
        model.script(marker, Reply(text=["gone ", "soon"]))
        plain = client.responses.create(model="gpt-4o", input=marker, store=False)
        with client.responses.stream(model="gpt-4o", input=marker, store=False) as stream:
            streamed = stream.get_final_response()
        kept = client.responses.create(model="gpt-4o", input=marker)
        for response in (plain, streamed):
            assert response.output_text == "gone soon"
            # Removed after the answer went out, not before: soon, not at once.
            wait_until(
                lambda r=response: rows_of(database, r.id),  # type: ignore[misc]
                lambda rows: rows == NOTHING,
                timeout=10,
                what=f"{response.id} removed",
            )
        rows = rows_of(database, kept.id)
        assert (rows["runs"], rows["items"]) == (1, 2)
        assert rows["run_events"] > 0

    def test_store_false_in_a_conversation_keeps_its_items_there(
        self, client: OpenAI, model: ScriptedModel, marker: str, database: Engine
    ) -> None:
        model.script(marker, Reply(text="Kept in the conversation."))
        conversation = client.conversations.create()
        response = client.responses.create(
            model="gpt-4o", input=marker, conversation=conversation.id, store=False
        )
        wait_until(
            lambda: rows_of(database, response.id)["runs"],
            lambda runs: runs == 0,
            timeout=10,
            what="the response's run removed",
        )
        listed = client.conversations.items.list(conversation.id, order="asc")
        texts = [item.content[0].text for item in listed.data]  # type: ignore[union-attr]
        assert texts == [marker, "Kept in the conversation."]

    def test_store_false_continues_a_stored_chain(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        first = client.responses.create(model="gpt-4o", input=f"first {marker}")
        client.responses.create(
            model="gpt-4o", previous_response_id=first.id, input="second", store=False
        )
        assert [m["content"] for m in model.requests(marker)[-1]["messages"]] == [
            f"first {marker}",
            f"Echo: first {marker}",
            "second",
        ]


class TestRetrieveAndDelete:
    def test_retrieve(self, client: OpenAI, marker: str) -> None:
        created = client.responses.create(model="gpt-4o", input=marker, metadata={"k": "v"})
        fetched = client.responses.retrieve(created.id)
        assert fetched.model_dump() == created.model_dump()

    def test_delete(self, client: OpenAI, marker: str) -> None:
        created = client.responses.create(model="gpt-4o", input=marker)
        raw = client.responses.with_raw_response.delete(created.id).http_response.json()
        assert raw == {"id": created.id, "object": "response.deleted", "deleted": True}
        with pytest.raises(NotFoundError):
            client.responses.retrieve(created.id)
        with pytest.raises(NotFoundError):
            client.responses.delete(created.id)

    def test_unknown(self, client: OpenAI) -> None:
        for call in (
            lambda: client.responses.retrieve("resp_nope"),
            lambda: client.responses.delete("resp_nope"),
            lambda: client.responses.cancel("resp_nope"),
            lambda: client.responses.input_items.list("resp_nope"),
        ):
            with pytest.raises(NotFoundError) as err:
                call()
            assert err.value.body["message"] == "Response with id 'resp_nope' not found."


class TestInputItems:
    def test_items_of_a_response(self, client: OpenAI, marker: str) -> None:
        response = client.responses.create(
            model="gpt-4o",
            input=[
                {"role": "user", "content": "one"},
                {"role": "user", "content": [{"type": "input_text", "text": marker}]},
            ],
        )
        listed = client.responses.input_items.list(response.id)
        assert [item.content[0].text for item in listed.data] == [marker, "one"]  # type: ignore[union-attr]
        item = listed.data[0]
        assert item.type == "message"
        assert item.role == "user"
        assert item.id.startswith("msg_")
        assert item.status == "completed"
        ascending = client.responses.input_items.list(response.id, order="asc")
        assert [i.id for i in ascending.data] == [i.id for i in reversed(listed.data)]

    def test_paging_through_a_chain(self, client: OpenAI, marker: str) -> None:
        previous = None
        for turn in range(12):
            previous = client.responses.create(
                model="gpt-4o",
                input=f"turn {turn} {marker}",
                previous_response_id=previous.id if previous else None,
            )
        assert previous is not None
        page = client.responses.input_items.list(previous.id, limit=5, order="asc")
        assert page.has_more is True
        everything = list(client.responses.input_items.list(previous.id, limit=5, order="asc"))
        texts = [item.content[0].text for item in everything]  # type: ignore[union-attr]
        expected = []
        for turn in range(11):
            expected += [f"turn {turn} {marker}", f"Echo: turn {turn} {marker}"]
        assert texts == [*expected, f"turn 11 {marker}"]
        newest_first = list(client.responses.input_items.list(previous.id, limit=7))
        assert [i.id for i in newest_first] == [i.id for i in reversed(everything)]

"""Reasoning models: a backend's `reasoning_content` (or `reasoning`) becomes a reasoning item
before the message, streamed with `response.reasoning_text.*`; `reasoning_tokens` comes from
the backend's usage; `reasoning.encrypted_content` lets a stateless client carry it to its next
turn, and the models file decides whether the backend sees it again."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import BadRequestError, OpenAI

from tests.responses.conftest import raw_events, weather_tool
from tests.runs.conftest import Tuned, wait_until
from tests.support import strict_types
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall

THOUGHT = "The user greets me.\n\nI should greet them back, briefly."
ENCRYPTED = "reasoning.encrypted_content"


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def post(client: OpenAI, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{client.base_url}responses",
        headers={"Authorization": f"Bearer {client.api_key}"},
        json=body,
        timeout=30,
    )


def created(client: OpenAI, body: dict[str, Any]) -> dict[str, Any]:
    answer = post(client, body)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    strict_types.response(data)
    return data


def assistant_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request["messages"] if m["role"] == "assistant"]


@pytest.fixture(scope="module")
def routed(tuned_server: Callable[..., Tuned], model: ScriptedModel, work_dir: Path) -> OpenAI:
    """A server whose models file sends reasoning back for `thinker` and not for `plain`."""
    models_file = work_dir / "models-reasoning.yaml"
    models_file.write_text(
        f"backends:\n  scripted:\n    base_url: {model.base_url}\n"
        "models:\n"
        "  thinker:\n    backend: scripted\n    upstream_model: gpt-4o\n"
        "    reasoning_to_backend: true\n"
        "  plain:\n    backend: scripted\n    upstream_model: gpt-4o\n"
    )
    return tuned_server({"ASSISTANTD_MODELS_FILE": str(models_file)}).client


class TestReasoningItem:
    @pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
    def test_before_the_message(
        self, client: OpenAI, model: ScriptedModel, marker: str, field: str
    ) -> None:
        model.script(
            marker,
            Reply(text="Hello!", reasoning=THOUGHT, reasoning_field=field, reasoning_tokens=14),
        )
        data = created(client, {"model": "gpt-4o", "input": marker})
        reasoning, message = data["output"]
        assert reasoning == {
            "type": "reasoning",
            "id": reasoning["id"],
            "summary": [],
            "status": "completed",
            "content": [{"type": "reasoning_text", "text": THOUGHT}],
        }
        assert reasoning["id"].startswith("rs_")
        assert message["type"] == "message"
        assert message["content"][0]["text"] == "Hello!"
        assert data["usage"]["output_tokens_details"] == {"reasoning_tokens": 14}
        again = client.responses.retrieve(data["id"])
        assert again.output[0].model_dump(exclude_none=True) == reasoning
        assert again.usage is not None
        assert again.usage.output_tokens_details.reasoning_tokens == 14

    def test_reasoning_tokens_are_estimated_when_the_backend_does_not_count_them(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="Hi.", reasoning=THOUGHT * 4, reasoning_tokens=0))
        data = created(client, {"model": "gpt-4o", "input": marker})
        assert data["usage"]["output_tokens_details"]["reasoning_tokens"] > 10

    def test_no_reasoning_no_item(self, client: OpenAI, marker: str) -> None:
        data = created(client, {"model": "gpt-4o", "input": marker})
        assert [item["type"] for item in data["output"]] == ["message"]
        assert data["usage"]["output_tokens_details"] == {"reasoning_tokens": 0}

    def test_effort_goes_to_the_backend(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="Hi.", reasoning="Think."))
        created(client, {"model": "gpt-4o", "input": marker, "reasoning": {"effort": "high"}})
        assert model.requests(marker)[-1]["reasoning_effort"] == "high"

    def test_summary_when_asked(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text="Hello!", reasoning=THOUGHT))
        data = created(
            client, {"model": "gpt-4o", "input": marker, "reasoning": {"summary": "auto"}}
        )
        assert data["reasoning"]["summary"] == "auto"
        assert data["output"][0]["summary"] == [
            {"type": "summary_text", "text": "The user greets me."}
        ]
        assert data["output"][0]["content"][0]["text"] == THOUGHT

    def test_before_a_function_call(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(
            marker,
            Reply(reasoning="I need the weather.", tool_calls=[ToolCall("get_weather", "{}")]),
        )
        data = created(client, {"model": "gpt-4o", "input": marker, "tools": [weather_tool()]})
        assert [item["type"] for item in data["output"]] == ["reasoning", "function_call"]

    def test_cancelled_while_reasoning(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(reasoning=["Step one.", " Step two."], hang=True))
        response = client.responses.create(model="gpt-4o", input=marker, background=True)
        wait_until(
            lambda: client.responses.retrieve(response.id),
            lambda r: bool(r.output),
            what="the model to start reasoning",
        )
        cancelled = client.responses.cancel(response.id)
        assert cancelled.status == "cancelled"
        [reasoning] = cancelled.output
        assert reasoning.type == "reasoning"
        assert reasoning.status == "incomplete"
        assert reasoning.content is not None
        assert [c.text for c in reasoning.content] == ["Step one. Step two."]
        strict_types.response(client.responses.retrieve(response.id).model_dump(mode="json"))


class TestStream:
    def test_events(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text=["Hel", "lo"], reasoning=["Think", "ing."]))
        body = {
            "model": "gpt-4o",
            "input": marker,
            "stream": True,
            "include": [ENCRYPTED],
            "reasoning": {"summary": "concise"},
        }
        events = raw_events(client, "responses", body=body)
        for data in events:
            strict_types.event(data)
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        assert names(events) == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.reasoning_text.delta",
            "response.reasoning_text.delta",
            "response.reasoning_text.done",
            "response.content_part.done",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
        added, done = events[2]["item"], events[12]["item"]
        assert added == {
            "type": "reasoning",
            "id": added["id"],
            "summary": [],
            "status": "in_progress",
            "content": [],
        }
        assert all(e["output_index"] == 0 for e in events[2:13])
        assert all(e["output_index"] == 1 for e in events[13:20])
        assert [e["delta"] for e in events[4:6]] == ["Think", "ing."]
        assert events[6]["text"] == "Thinking."
        assert events[7]["part"] == {"type": "reasoning_text", "text": "Thinking."}
        assert events[11]["part"] == {"type": "summary_text", "text": "Thinking."}
        assert done["status"] == "completed"
        assert done["content"] == [{"type": "reasoning_text", "text": "Thinking."}]
        assert done["summary"] == [{"type": "summary_text", "text": "Thinking."}]
        assert done["encrypted_content"]
        final = strict_types.response(events[-1]["response"])
        assert final.output[0].model_dump(exclude_none=True) == done
        assert final.output_text == "Hello"

    def test_the_sdk_stream_helper(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text="Fine.", reasoning=THOUGHT, reasoning_field="reasoning"))
        with client.responses.stream(model="gpt-4o", input=marker) as stream:
            thought = "".join(e.delta for e in stream if e.type == "response.reasoning_text.delta")
            final = stream.get_final_response()
        assert thought == THOUGHT
        assert final.output[0].type == "reasoning"
        assert final.output_text == "Fine."


class TestEncryptedCarryBack:
    def test_included_only_when_asked(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="Hi.", reasoning=THOUGHT))
        plain = created(client, {"model": "gpt-4o", "input": marker})
        assert "encrypted_content" not in plain["output"][0]
        sealed = created(client, {"model": "gpt-4o", "input": marker, "include": [ENCRYPTED]})
        token = sealed["output"][0]["encrypted_content"]
        assert b"greets" not in base64.urlsafe_b64decode(token)  # sealed, not encoded
        shown = client.responses.retrieve(plain["id"], include=[ENCRYPTED])
        assert shown.output[0].type == "reasoning"
        assert shown.output[0].encrypted_content

    @pytest.mark.parametrize(("route", "sent_back"), [("thinker", True), ("plain", False)])
    def test_stateless_turns(
        self, routed: OpenAI, model: ScriptedModel, marker: str, route: str, sent_back: bool
    ) -> None:
        model.script(f"{marker} one", Reply(text="Hello!", reasoning=THOUGHT))
        first = created(
            routed,
            {"model": route, "input": f"{marker} one", "store": False, "include": [ENCRYPTED]},
        )
        reasoning = first["output"][0]
        assert reasoning["encrypted_content"]
        history = [{"role": "user", "content": f"{marker} one"}, *first["output"]]
        history[1] = {k: v for k, v in reasoning.items() if k != "content"}  # as Codex sends it
        model.script(f"{marker} two", Reply(text="Again."))
        second = created(
            routed,
            {
                "model": route,
                "input": [*history, {"role": "user", "content": f"{marker} two"}],
                "store": False,
            },
        )
        assert second["output"][0]["content"][0]["text"] == "Again."
        (request,) = model.requests(f"{marker} two")
        (answer,) = assistant_messages(request)
        assert answer["content"] == "Hello!"
        if sent_back:
            assert answer["reasoning_content"] == THOUGHT
        else:
            assert "reasoning_content" not in answer
            assert THOUGHT not in str(request)

    def test_stored_chain(self, routed: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(f"{marker} one", Reply(text="Hello!", reasoning=THOUGHT))
        first = routed.responses.create(model="thinker", input=f"{marker} one")
        second = routed.responses.create(
            model="thinker", input=f"{marker} two", previous_response_id=first.id
        )
        assert second.status == "completed"
        (answer,) = assistant_messages(model.requests(f"{marker} two")[-1])
        assert answer == {"role": "assistant", "content": "Hello!", "reasoning_content": THOUGHT}

    def test_reasoning_before_a_tool_call_goes_with_it(
        self, routed: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(
            marker,
            Reply(reasoning="Weather first.", tool_calls=[ToolCall("get_weather", "{}")]),
        )
        first = routed.responses.create(
            model="thinker", input=marker, tools=[weather_tool()], store=False, include=[ENCRYPTED]
        )
        call = first.output[1]
        assert call.type == "function_call"
        output = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
        model.script("sunny", Reply(text="It is sunny."))
        routed.responses.create(
            model="thinker",
            input=[
                {"role": "user", "content": marker},
                *[item.model_dump(exclude_none=True) for item in first.output],
                output,
            ],
            tools=[weather_tool()],
            store=False,
        )
        (calls,) = assistant_messages(model.requests("sunny")[-1])
        assert calls["tool_calls"][0]["id"] == call.call_id
        assert calls["reasoning_content"] == "Weather first."

    def test_content_without_encryption(
        self, routed: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        reasoning = {
            "type": "reasoning",
            "summary": [],
            "content": [{"type": "reasoning_text", "text": "Mine."}],
        }
        created(
            routed,
            {
                "model": "thinker",
                "input": [
                    {"role": "user", "content": "hi"},
                    reasoning,
                    {"role": "assistant", "content": "Hello."},
                    {"role": "user", "content": marker},
                ],
                "store": False,
            },
        )
        (answer,) = assistant_messages(model.requests(marker)[-1])
        assert answer["reasoning_content"] == "Mine."


class TestTamperedContent:
    def sealed_history(self, client: OpenAI, model: ScriptedModel, marker: str) -> list[Any]:
        model.script(marker, Reply(text="Hello!", reasoning=THOUGHT))
        first = created(
            client, {"model": "gpt-4o", "input": marker, "store": False, "include": [ENCRYPTED]}
        )
        return [{"role": "user", "content": marker}, *first["output"]]

    def check_refused(self, client: OpenAI, history: list[Any], token: str) -> None:
        conversation = client.conversations.create()
        history[1]["encrypted_content"] = token
        answer = post(
            client,
            {
                "model": "gpt-4o",
                "input": [*history, {"role": "user", "content": "and?"}],
                "conversation": conversation.id,
            },
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == {
            "message": answer.json()["error"]["message"],
            "type": "invalid_request_error",
            "param": "input[1].encrypted_content",
            "code": "invalid_encrypted_content",
        }
        assert client.conversations.items.list(conversation.id).data == []

    @pytest.mark.parametrize("how", ["edited", "cut", "garbage"])
    def test_refused(self, client: OpenAI, model: ScriptedModel, marker: str, how: str) -> None:
        history = self.sealed_history(client, model, marker)
        token: str = history[1]["encrypted_content"]
        if how == "edited":
            middle = len(token) // 2
            token = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
        elif how == "cut":
            token = token[:-8]
        else:
            token = "not-a-token"
        self.check_refused(client, history, token)

    def test_another_servers_key(
        self, client: OpenAI, routed: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        history = self.sealed_history(client, model, marker)  # sealed by the suite's server
        token = history[1]["encrypted_content"]
        self.check_refused(routed, history, token)

    def test_with_the_sdk(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        history = self.sealed_history(client, model, marker)
        history[1]["encrypted_content"] = history[1]["encrypted_content"][:-4]
        with pytest.raises(BadRequestError) as caught:
            client.responses.create(model="gpt-4o", input=history, store=False)
        assert caught.value.code == "invalid_encrypted_content"


class TestAssistantsRuns:
    def test_reasoning_stays_out_of_the_thread(
        self, client: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        model.script(marker, Reply(text="Hello!", reasoning=THOUGHT, reasoning_tokens=9))
        assistant = client.beta.assistants.create(model="gpt-4o")
        run = client.beta.threads.create_and_run_poll(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": marker}]},
        )
        assert run.status == "completed"
        assert run.usage is not None
        assert set(run.usage.model_dump()) == {
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
        }
        messages = client.beta.threads.messages.list(run.thread_id, order="asc").data
        assert [m.role for m in messages] == ["user", "assistant"]
        assert messages[1].content[0].type == "text"
        assert messages[1].content[0].text.value == "Hello!"
        items = client.conversations.items.list(run.thread_id).data
        assert [item.type for item in items] == ["message", "message"]

    def test_streamed_run(self, client: OpenAI, model: ScriptedModel, marker: str) -> None:
        model.script(marker, Reply(text=["Hel", "lo"], reasoning=["a", "b"]))
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        with client.beta.threads.runs.stream(
            thread_id=thread.id, assistant_id=assistant.id
        ) as stream:
            events = [event.event for event in stream]
            text = stream.get_final_messages()[0].content[0]
        assert text.type == "text"
        assert text.text.value == "Hello"
        assert events[-1] == "thread.run.completed"


class TestAgentsSdk:
    @pytest.mark.asyncio(loop_scope="session")
    async def test_stateless_agent_with_a_reasoning_model(
        self, routed: OpenAI, model: ScriptedModel, marker: str
    ) -> None:
        """The Agents SDK with `store: false` replays the reasoning item sealed; the model
        whose route says so gets its reasoning back with its tool call."""
        from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, function_tool
        from openai import AsyncOpenAI
        from openai.types.shared import Reasoning

        @function_tool
        def get_weather(city: str) -> str:
            """The weather in a city."""
            return f"sunny in {city}"

        model.script(
            marker,
            Reply(
                reasoning="I need the weather in Paris.",
                tool_calls=[ToolCall("get_weather", '{"city": "Paris"}')],
            ),
            Reply(text="It is sunny in Paris.", reasoning="Now I can answer."),
        )
        async with AsyncOpenAI(
            api_key=routed.api_key, base_url=str(routed.base_url), max_retries=0
        ) as aclient:
            agent = Agent(
                name="weather",
                tools=[get_weather],
                model=OpenAIResponsesModel(model="thinker", openai_client=aclient),
                model_settings=ModelSettings(
                    store=False,
                    reasoning=Reasoning(effort="low", summary="auto"),
                    response_include=[ENCRYPTED],
                ),
            )
            streamed = Runner.run_streamed(agent, marker)
            kinds = [event.type async for event in streamed.stream_events()]
        assert "raw_response_event" in kinds
        assert streamed.final_output == "It is sunny in Paris."
        first, second = model.requests(marker)
        assert first["reasoning_effort"] == "low"
        (calls,) = assistant_messages(second)
        assert calls["tool_calls"][0]["function"]["name"] == "get_weather"
        assert calls["reasoning_content"] == "I need the weather in Paris."

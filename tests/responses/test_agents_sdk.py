"""The OpenAI Agents SDK (`openai-agents`) against assistantd's Responses API: an agent with a
function tool, run plainly, streamed, chained by `previous_response_id`, on a conversation
(`conversation_id=`) and with an `OpenAIConversationsSession`.

The scripted model first calls the tool, then answers; each test checks what the second model
call was given, i.e. that the server rebuilt the whole history in each of the SDK's modes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import (
    Agent,
    OpenAIConversationsSession,
    OpenAIResponsesModel,
    Runner,
    RunResult,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI, NotFoundError

from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import LiveServer

INSTRUCTIONS = "Answer with the weather tool."

set_tracing_disabled(True)  # no trace export (it would go to api.openai.com)

# The tests and the client fixture share the session's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def aclient(server: LiveServer, api_key: str) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(api_key=api_key, base_url=f"{server.url}/v1", max_retries=0) as c:
        yield c


class Weather:
    """A weather agent whose tool records its calls."""

    def __init__(self, client: AsyncOpenAI) -> None:
        self.calls: list[str] = []

        @function_tool
        def get_weather(city: str) -> str:
            """The weather in a city."""
            self.calls.append(city)
            return f"sunny in {city}"

        self.agent = Agent(
            name="weather",
            instructions=INSTRUCTIONS,
            tools=[get_weather],
            model=OpenAIResponsesModel(model="gpt-4o", openai_client=client),
        )


def script_weather(
    model: ScriptedModel, marker: str, answer: str = "It is sunny in Paris."
) -> None:
    model.script(
        marker, Reply(tool_calls=[ToolCall("get_weather", '{"city": "Paris"}')]), Reply(text=answer)
    )


def chat(body: dict[str, Any]) -> list[tuple[str, str]]:
    """A chat request's messages as (role, text); calls as `call_id:name(args)`, results as
    `call_id=output`. The agent's instructions (sent on every call) must be there once; they
    are left out."""
    out: list[tuple[str, str]] = []
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        role = "system" if message["role"] == "developer" else message["role"]
        if role == "tool":
            out.append(("tool", f"{message['tool_call_id']}={content}"))
            continue
        if content:
            out.append((role, content))
        for call in message.get("tool_calls") or ():
            fn = call["function"]
            out.append(("call", f"{call['id']}:{fn['name']}({json.loads(fn['arguments'])})"))
    assert out.count(("system", INSTRUCTIONS)) == 1, out
    return [message for message in out if message != ("system", INSTRUCTIONS)]


def call_id_of(result: RunResult) -> str:
    [call] = [item for item in result.raw_responses[0].output if item.type == "function_call"]
    assert call.name == "get_weather"
    return call.call_id


def turn(call_id: str, question: str) -> list[tuple[str, str]]:
    """What the model is given on the call after the tool ran."""
    return [
        ("user", question),
        ("call", f"{call_id}:get_weather({{'city': 'Paris'}})"),
        ("tool", f"{call_id}=sunny in Paris"),
    ]


async def test_function_tool(aclient: AsyncOpenAI, model: ScriptedModel, marker: str) -> None:
    weather = Weather(aclient)
    script_weather(model, marker)
    question = f"{marker} What is the weather in Paris?"
    result = await Runner.run(weather.agent, question)
    assert result.final_output == "It is sunny in Paris."
    assert weather.calls == ["Paris"]
    assert len(result.raw_responses) == 2
    assert all(r.response_id and r.response_id.startswith("resp_") for r in result.raw_responses)

    first, second = model.requests(marker)
    # the tool as the SDK declared it
    [tool] = first["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "get_weather"
    assert tool["function"]["description"] == "The weather in a city."
    assert tool["function"]["parameters"]["properties"] == {
        "city": {"title": "City", "type": "string"}
    }
    assert chat(first) == [("user", question)]
    # the SDK resent the whole transcript, its replayed function call included
    call_id = call_id_of(result)
    assert chat(second) == turn(call_id, question)
    # both responses are stored, usage included
    stored = await aclient.responses.retrieve(result.raw_responses[1].response_id or "")
    assert stored.output_text == "It is sunny in Paris."
    assert result.context_wrapper.usage.requests == 2
    assert result.context_wrapper.usage.input_tokens > 0
    assert result.context_wrapper.usage.output_tokens > 0

    # `to_input_list()` continues the transcript in a second run
    model.script(f"{marker} And tomorrow?", Reply(text="Sunny again."))
    follow_up = await Runner.run(
        weather.agent,
        [*result.to_input_list(), {"role": "user", "content": f"{marker} And tomorrow?"}],
    )
    assert follow_up.final_output == "Sunny again."
    assert chat(model.requests(f"{marker} And tomorrow?")[-1]) == [
        *turn(call_id, question),
        ("assistant", "It is sunny in Paris."),
        ("user", f"{marker} And tomorrow?"),
    ]


async def test_function_tool_streamed(
    aclient: AsyncOpenAI, model: ScriptedModel, marker: str
) -> None:
    weather = Weather(aclient)
    script_weather(model, marker, "It is sunny in Paris, streamed.")
    question = f"{marker} Weather?"
    result = Runner.run_streamed(weather.agent, question)
    raw: list[str] = []
    items: list[str] = []
    deltas: list[str] = []
    async for event in result.stream_events():
        if event.type == "raw_response_event":
            raw.append(event.data.type)
            if event.data.type == "response.output_text.delta":
                deltas.append(event.data.delta)
        elif event.type == "run_item_stream_event":
            items.append(event.name)
    assert result.final_output == "It is sunny in Paris, streamed."
    assert "".join(deltas) == "It is sunny in Paris, streamed."
    assert weather.calls == ["Paris"]
    assert raw.count("response.created") == 2
    assert raw.count("response.completed") == 2
    assert "response.function_call_arguments.delta" in raw
    assert items == ["tool_called", "tool_output", "message_output_created"]
    call_id = call_id_of(result)
    assert chat(model.requests(marker)[1]) == [
        *turn(call_id, question),
    ]


async def test_auto_previous_response_id(
    aclient: AsyncOpenAI, model: ScriptedModel, marker: str
) -> None:
    weather = Weather(aclient)
    script_weather(model, marker)
    question = f"{marker} Weather?"
    result = await Runner.run(weather.agent, question, auto_previous_response_id=True)
    assert result.final_output == "It is sunny in Paris."
    first_id, second_id = (r.response_id or "" for r in result.raw_responses)
    # the second call sent only the tool output, on top of the first response
    second = await aclient.responses.retrieve(second_id)
    assert second.previous_response_id == first_id
    inputs = [item.model_dump() async for item in aclient.responses.input_items.list(second_id)]
    assert inputs[0]["type"] == "function_call_output"
    call_id = call_id_of(result)
    assert chat(model.requests(marker)[1]) == [
        *turn(call_id, question),
    ]

    # and a later run continues the chain by `previous_response_id`
    model.script(f"{marker} And tomorrow?", Reply(text="Sunny again."))
    follow_up = await Runner.run(
        weather.agent, f"{marker} And tomorrow?", previous_response_id=result.last_response_id
    )
    assert follow_up.final_output == "Sunny again."
    [response] = follow_up.raw_responses
    stored = await aclient.responses.retrieve(response.response_id or "")
    assert stored.previous_response_id == second_id
    assert chat(model.requests(f"{marker} And tomorrow?")[-1]) == [
        *turn(call_id, question),
        ("assistant", "It is sunny in Paris."),
        ("user", f"{marker} And tomorrow?"),
    ]


async def test_conversation_id(aclient: AsyncOpenAI, model: ScriptedModel, marker: str) -> None:
    weather = Weather(aclient)
    conversation = await aclient.conversations.create()
    script_weather(model, marker)
    question = f"{marker} Weather?"
    result = await Runner.run(weather.agent, question, conversation_id=conversation.id)
    assert result.final_output == "It is sunny in Paris."
    call_id = call_id_of(result)
    for response in result.raw_responses:
        stored = await aclient.responses.retrieve(response.response_id or "")
        assert stored.conversation is not None
        assert stored.conversation.id == conversation.id
    assert chat(model.requests(marker)[1]) == [
        *turn(call_id, question),
    ]
    items = [
        item.model_dump()
        async for item in aclient.conversations.items.list(conversation.id, order="asc")
    ]
    assert [item["type"] for item in items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert items[1]["call_id"] == items[2]["call_id"] == call_id
    assert items[3]["content"][0]["text"] == "It is sunny in Paris."

    # a second run on the conversation sees the first
    model.script(f"{marker} And tomorrow?", Reply(text="Sunny again."))
    follow_up = await Runner.run(
        weather.agent, f"{marker} And tomorrow?", conversation_id=conversation.id
    )
    assert follow_up.final_output == "Sunny again."
    assert chat(model.requests(f"{marker} And tomorrow?")[-1]) == [
        *turn(call_id, question),
        ("assistant", "It is sunny in Paris."),
        ("user", f"{marker} And tomorrow?"),
    ]


async def test_openai_conversations_session(
    aclient: AsyncOpenAI, model: ScriptedModel, marker: str
) -> None:
    weather = Weather(aclient)
    session = OpenAIConversationsSession(openai_client=aclient)
    script_weather(model, marker)
    question = f"{marker} Weather?"
    result = await Runner.run(weather.agent, question, session=session)
    assert result.final_output == "It is sunny in Paris."
    call_id = call_id_of(result)
    assert chat(model.requests(marker)[1]) == [
        *turn(call_id, question),
    ]
    # the session wrote the turn into its conversation
    conversation_id = session.session_id
    assert conversation_id.startswith("conv_")
    history = await session.get_items()
    assert [item.get("type") for item in history] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]

    # the second run replays the stored items (ids and statuses included) as its input
    model.script(f"{marker} And tomorrow?", Reply(text="Sunny again."))
    follow_up = await Runner.run(weather.agent, f"{marker} And tomorrow?", session=session)
    assert follow_up.final_output == "Sunny again."
    assert chat(model.requests(f"{marker} And tomorrow?")[-1]) == [
        *turn(call_id, question),
        ("assistant", "It is sunny in Paris."),
        ("user", f"{marker} And tomorrow?"),
    ]
    history = await session.get_items()
    assert len(history) == 6

    popped = await session.pop_item()
    assert popped is not None
    assert popped["content"][0]["text"] == "Sunny again."  # type: ignore[typeddict-item]
    assert len(await session.get_items()) == 5
    await session.clear_session()
    with pytest.raises(NotFoundError):
        await aclient.conversations.retrieve(conversation_id)

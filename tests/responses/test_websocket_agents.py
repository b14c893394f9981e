"""The OpenAI Agents SDK's WebSocket transport (`OpenAIResponsesWSModel`: `response.create`
frames on one connection) against assistantd's WebSocket mode: an agent with a function tool,
unstored, chained by `previous_response_id` (the connection keeps the context), run plainly and
streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import Agent, ModelSettings, OpenAIResponsesWSModel, Runner, function_tool
from openai import AsyncOpenAI, NotFoundError

from tests.responses.test_agents_sdk import INSTRUCTIONS, call_id_of, chat, script_weather, turn
from tests.support.scripted_model import ScriptedModel
from tests.support.server import LiveServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def aclient(server: LiveServer, api_key: str) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(api_key=api_key, base_url=f"{server.url}/v1", max_retries=0) as c:
        yield c


class RecordingModel(OpenAIResponsesWSModel):
    """The SDK's WebSocket model, keeping the `response.create` frames it sends."""

    def __init__(self, client: AsyncOpenAI) -> None:
        super().__init__(model="gpt-4o", openai_client=client)
        self.frames: list[dict[str, Any]] = []

    async def _prepare_websocket_request(
        self, create_kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], str, dict[str, str]]:
        frame, url, headers = await super()._prepare_websocket_request(create_kwargs)
        self.frames.append(frame)
        return frame, url, headers


def weather_agent(client: AsyncOpenAI, calls: list[str]) -> Agent:
    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    return Agent(
        name="weather",
        instructions=INSTRUCTIONS,
        tools=[get_weather],
        model=RecordingModel(client),
        model_settings=ModelSettings(store=False),
    )


@pytest.mark.parametrize("streamed", [False, True])
async def test_unstored_chain_over_the_socket(
    aclient: AsyncOpenAI, model: ScriptedModel, marker: str, streamed: bool
) -> None:
    calls: list[str] = []
    agent = weather_agent(aclient, calls)
    script_weather(model, marker)
    question = f"{marker} What is the weather in Paris?"
    try:
        if streamed:
            result = Runner.run_streamed(agent, question, auto_previous_response_id=True)
            async for _ in result.stream_events():
                pass
        else:
            result = await Runner.run(agent, question, auto_previous_response_id=True)
    finally:
        await agent.model.close()  # type: ignore[union-attr]
    assert result.final_output == "It is sunny in Paris."
    assert calls == ["Paris"]
    # the second call sent only the tool output and the first response's id: the server
    # rebuilt the rest from the connection's memory of the unstored response
    first, second = model.requests(marker)
    assert chat(first) == [("user", question)]
    assert chat(second) == turn(call_id_of(result), question)  # type: ignore[arg-type]
    sent = agent.model.frames  # type: ignore[union-attr]
    assert sent[1]["previous_response_id"] == result.raw_responses[0].response_id
    assert [item["type"] for item in sent[1]["input"]] == ["function_call_output"]
    for response in result.raw_responses:
        with pytest.raises(NotFoundError):
            await aclient.responses.retrieve(response.response_id or "")

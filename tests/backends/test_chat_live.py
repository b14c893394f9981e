"""ChatBackend against the scripted model server over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from assistantd.backends import (
    BackendError,
    ChatBackend,
    ChatEvent,
    ChatRequest,
    Finish,
    ModelRoute,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from assistantd.backends.transport import AiohttpTransport
from assistantd.settings import Settings
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import free_port

TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
    }
]


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedModel]:
    with ScriptedModel() as model:
        yield model


@pytest.fixture
def model(scripted: ScriptedModel) -> ScriptedModel:
    scripted.clear()
    return scripted


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "model_max_retries": 2,
        "model_retry_base_seconds": 0.01,
        "model_read_timeout_seconds": 10.0,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def backend(**overrides: Any) -> AsyncIterator[ChatBackend]:
    """A ChatBackend on its own client, closed in the test's own event loop."""
    config = settings(**overrides)
    chat = ChatBackend(AiohttpTransport(config), config)
    try:
        yield chat
    finally:
        await chat.aclose()


def route(model: ScriptedModel, name: str = "gpt-4o") -> ModelRoute:
    return ModelRoute(name, model.base_url, "sk-up", "llama3", 8192, None)


def ask(text: str, **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], **kwargs)


async def collect(chat: ChatBackend, r: ModelRoute, request: ChatRequest) -> list[ChatEvent]:
    return [event async for event in chat.stream(r, request)]


async def test_text_stream(model: ScriptedModel) -> None:
    model.script("hello", Reply(text=["Hel", "lo", " there"], usage=(9, 3)))
    async with backend() as chat:
        events = await collect(chat, route(model), ask("hello"))
    assert events == [
        TextDelta("Hel"),
        TextDelta("lo"),
        TextDelta(" there"),
        Finish("stop"),
        Usage(9, 3, reasoning_tokens=0),  # the backend says it reasoned for none
    ]
    [body] = model.requests("hello")
    assert body["model"] == "llama3"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert model.headers("hello")[0]["authorization"] == "Bearer sk-up"


async def test_tool_calls(model: ScriptedModel) -> None:
    calls = [
        ToolCall("get_weather", '{"city": "Paris, France"}', id="call_a"),
        ToolCall("get_weather", '{"city": "Rome"}', id="call_b"),
    ]
    model.script("weather", Reply(text="Let me check.", tool_calls=calls))
    request = ask("weather", tools=TOOLS, tool_choice="auto", parallel_tool_calls=True)
    async with backend() as chat:
        events = await collect(chat, route(model), request)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Let me check."
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [(d.index, d.id, d.name) for d in deltas if d.id] == [
        (0, "call_a", "get_weather"),
        (1, "call_b", "get_weather"),
    ]
    arguments = {0: "", 1: ""}
    for d in deltas:
        arguments[d.index] += d.arguments
    assert json.loads(arguments[0]) == {"city": "Paris, France"}
    assert json.loads(arguments[1]) == {"city": "Rome"}
    assert events[-2] == Finish("tool_calls")
    assert isinstance(events[-1], Usage)
    assert events[-1].prompt_tokens > 0


async def test_tool_round_trip_passes_the_request_checks(model: ScriptedModel) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    messages = [
        {"role": "user", "content": "weather"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    model.script("sunny", Reply(text="It is sunny."))
    async with backend() as chat:
        events = await collect(chat, route(model), ChatRequest(messages=messages, tools=TOOLS))
    assert events[0] == TextDelta("It")


async def test_retry_after_429(model: ScriptedModel) -> None:
    model.script("busy", Reply(status=429, retry_after=0.3), Reply(text="ok"))
    started = time.monotonic()
    async with backend() as chat:
        events = await collect(chat, route(model), ask("busy"))
    assert time.monotonic() - started >= 0.3
    assert events[0] == TextDelta("ok")
    assert len(model.requests("busy")) == 2


@pytest.mark.parametrize(
    ("status", "code", "attempts"),
    [(429, "rate_limit_exceeded", 3), (500, "server_error", 3), (400, "invalid_prompt", 1)],
)
async def test_failures(model: ScriptedModel, status: int, code: str, attempts: int) -> None:
    model.script("fail", Reply(status=status, error_message="upstream says no"))
    async with backend() as chat:
        with pytest.raises(BackendError) as info:
            await collect(chat, route(model), ask("fail"))
    assert info.value.code == code
    assert "upstream says no" in info.value.message
    assert model.base_url in info.value.message
    assert len(model.requests("fail")) == attempts


async def test_connection_refused() -> None:
    dead = ModelRoute("m", f"http://127.0.0.1:{free_port()}/v1", None, "m", 8192, None)
    async with backend(model_max_retries=1) as chat:
        with pytest.raises(BackendError) as info:
            await collect(chat, dead, ask("x"))
    assert info.value.code == "server_error"
    assert "Could not connect" in info.value.message


async def test_slow_start_times_out_and_is_retried(model: ScriptedModel) -> None:
    model.script("slow", Reply(text="late", delay=3))
    async with backend(model_read_timeout_seconds=0.3, model_max_retries=1) as chat:
        with pytest.raises(BackendError) as info:
            await collect(chat, route(model), ask("slow"))
    assert info.value.code == "server_error"
    assert "did not answer within 0.3s" in info.value.message
    assert len(model.requests("slow")) == 2


async def test_stall_mid_stream_fails(model: ScriptedModel) -> None:
    model.script("stall", Reply(text=["a", "b"], hang=True))
    events: list[ChatEvent] = []

    async def consume() -> None:
        async with backend(model_read_timeout_seconds=0.3) as chat:
            async for event in chat.stream(route(model), ask("stall")):
                events.append(event)

    with pytest.raises(BackendError) as info:
        await consume()
    assert events == [TextDelta("a"), TextDelta("b")]
    assert info.value.code == "server_error"
    assert "stalled mid-response" in info.value.message
    assert len(model.requests("stall")) == 1


async def test_closing_the_stream_disconnects(model: ScriptedModel) -> None:
    model.script("forever", Reply(text=["first", " second"], hang=True))
    async with backend() as chat:
        events = chat.stream(route(model), ask("forever"))
        assert await anext(events) == TextDelta("first")
        await events.aclose()
        await _poll(lambda: len(model.disconnects("forever")) == 1)


async def test_cancelling_the_consumer_disconnects(model: ScriptedModel) -> None:
    model.script("forever", Reply(text="x", hang=True))
    first = asyncio.Event()
    async with backend() as chat:

        async def consume() -> None:
            async for _ in chat.stream(route(model), ask("forever")):
                first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await _poll(lambda: len(model.disconnects("forever")) == 1)


async def test_many_concurrent_streams(model: ScriptedModel) -> None:
    model.script("many", Reply(text=["a", "b", "c"]))
    async with backend() as chat:

        async def one(i: int) -> str:
            events = await collect(chat, route(model), ask(f"many {i}"))
            return "".join(e.text for e in events if isinstance(e, TextDelta))

        texts = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(200))), 60)
    assert texts == ["abc"] * 200


async def _poll(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)

"""The scripted model server, judged by the official `openai` client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.support.scripted_model import Reply, ScriptedModel, ToolCall

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedModel]:
    with ScriptedModel() as model:
        yield model


@pytest.fixture
def model(scripted: ScriptedModel) -> ScriptedModel:
    scripted.clear()
    return scripted


@pytest.fixture
def client(model: ScriptedModel) -> Iterator[OpenAI]:
    with OpenAI(base_url=model.base_url, api_key="x", max_retries=0) as c:
        yield c


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


class TestStreaming:
    def test_default_echo(self, client: OpenAI) -> None:
        stream = client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "system", "content": "be brief"}, *user("hello there")],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        assert all(c.object == "chat.completion.chunk" for c in chunks)
        assert len({c.id for c in chunks}) == 1
        assert chunks[0].choices[0].delta.role == "assistant"
        content = [c.choices[0].delta.content for c in chunks if c.choices]
        assert [piece for piece in content if piece] == ["Echo:", " hello", " there"]
        assert chunks[-2].choices[0].finish_reason == "stop"
        assert chunks[-1].choices == []
        usage = chunks[-1].usage
        assert usage is not None
        assert usage.prompt_tokens > 0
        assert usage.completion_tokens > 0
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        assert all(c.usage is None for c in chunks[:-1])

    def test_no_usage_chunk_unless_asked(self, client: OpenAI) -> None:
        chunks = list(client.chat.completions.create(model="m", messages=user("a"), stream=True))
        assert chunks[-1].choices[0].finish_reason == "stop"
        assert all(c.usage is None for c in chunks)

    def test_exact_chunks_and_usage(self, model: ScriptedModel, client: OpenAI) -> None:
        model.script("story", Reply(text=["Once", " upon", " a time"], usage=(11, 3)))
        chunks = list(
            client.chat.completions.create(
                model="m",
                messages=user("tell a story"),
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        pieces = [c.choices[0].delta.content for c in chunks if c.choices]
        assert [p for p in pieces if p] == ["Once", " upon", " a time"]
        assert chunks[-1].usage is not None
        assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (11, 3)

    def test_tool_calls_stream_like_openai(self, model: ScriptedModel, client: OpenAI) -> None:
        model.script(
            "weather",
            Reply(
                tool_calls=[
                    ToolCall("get_weather", '{"city": "Paris, France"}', id="call_fixed"),
                    ToolCall("get_weather", '{"city": "Rome"}'),
                ]
            ),
        )
        chunks = list(
            client.chat.completions.create(
                model="m", messages=user("weather?"), tools=[WEATHER_TOOL], stream=True
            )
        )
        deltas = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
        heads = [d for d in deltas if d.id]
        assert [(h.index, h.type) for h in heads] == [(0, "function"), (1, "function")]
        assert heads[0].id == "call_fixed"
        assert heads[1].id is not None
        assert heads[1].id.startswith("call_")
        assert all(h.function is not None and h.function.name == "get_weather" for h in heads)
        fragments = [d for d in deltas if not d.id]
        assert len(fragments) > 2
        assert all(d.function is not None and d.function.name is None for d in fragments)
        arguments = {0: "", 1: ""}
        for d in deltas:
            assert d.function is not None
            arguments[d.index] += d.function.arguments or ""
        assert json.loads(arguments[0]) == {"city": "Paris, France"}
        assert json.loads(arguments[1]) == {"city": "Rome"}
        assert chunks[-1].choices[0].finish_reason == "tool_calls"

    def test_sdk_stream_helper_assembles_the_completion(
        self, model: ScriptedModel, client: OpenAI
    ) -> None:
        model.script(
            "both",
            Reply(text="Checking.", tool_calls=[ToolCall("get_weather", '{"city": "Oslo"}')]),
        )
        with client.chat.completions.stream(
            model="m", messages=user("both please"), tools=[WEATHER_TOOL]
        ) as stream:
            completion = stream.get_final_completion()
        message = completion.choices[0].message
        assert message.content == "Checking."
        assert message.tool_calls is not None
        [call] = message.tool_calls
        assert call.type == "function"
        assert call.function.name == "get_weather"
        assert call.function.arguments == '{"city": "Oslo"}'
        assert completion.choices[0].finish_reason == "tool_calls"

    def test_explicit_finish_reason(self, model: ScriptedModel, client: OpenAI) -> None:
        model.script("long", Reply(text="trunc", finish_reason="length"))
        chunks = list(client.chat.completions.create(model="m", messages=user("long"), stream=True))
        assert chunks[-1].choices[0].finish_reason == "length"


class TestNonStreaming:
    def test_text(self, model: ScriptedModel, client: OpenAI) -> None:
        model.script("hi", Reply(text=["Hello", " you"], usage=(4, 2)))
        completion = client.chat.completions.create(model="gpt-4o", messages=user("hi"))
        assert completion.object == "chat.completion"
        assert completion.model == "gpt-4o"
        assert completion.choices[0].message.content == "Hello you"
        assert completion.choices[0].message.tool_calls is None
        assert completion.choices[0].finish_reason == "stop"
        assert completion.usage is not None
        assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 2)
        assert completion.usage.total_tokens == 6

    def test_tool_calls(self, model: ScriptedModel, client: OpenAI) -> None:
        model.script("weather", Reply(tool_calls=[ToolCall("get_weather", "{}", id="call_1")]))
        completion = client.chat.completions.create(
            model="m", messages=user("weather"), tools=[WEATHER_TOOL]
        )
        message = completion.choices[0].message
        assert message.content is None
        assert message.tool_calls is not None
        assert message.tool_calls[0].id == "call_1"
        assert completion.choices[0].finish_reason == "tool_calls"


class TestRules:
    def test_replies_in_order_then_last_repeats(self, model: ScriptedModel, client: OpenAI) -> None:
        model.script("count", Reply(text="one"), Reply(text="two"))
        answers = [
            client.chat.completions.create(model="m", messages=user("count")).choices[0]
            for _ in range(3)
        ]
        assert [a.message.content for a in answers] == ["one", "two", "two"]

    def test_newest_rule_wins(self, model: ScriptedModel, client: OpenAI) -> None:
        model.script("apple", Reply(text="old"))
        model.script("apple pie", Reply(text="new"))
        assert _say(client, "apple pie") == "new"
        assert _say(client, "apple tart") == "old"
        assert _say(client, "pear") == "Echo: pear"

    def test_matches_anywhere_in_the_messages(self, model: ScriptedModel, client: OpenAI) -> None:
        model.script('"role": "tool"', Reply(text="after tool"))
        messages = [
            *user("go"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ]
        completion = client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
        assert completion.choices[0].message.content == "after tool"

    def test_requests_and_clear(self, model: ScriptedModel, client: OpenAI) -> None:
        _say(client, "first thing")
        _say(client, "second thing")
        bodies = model.requests()
        assert [b["messages"][-1]["content"] for b in bodies] == ["first thing", "second thing"]
        assert model.requests("second") == [bodies[1]]
        assert model.headers("second")[0]["authorization"] == "Bearer x"
        model.clear()
        assert model.requests() == []

    def test_echo_of_content_parts(self, client: OpenAI) -> None:
        parts = [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ]
        completion = client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": parts}],  # type: ignore[list-item]
        )
        assert completion.choices[0].message.content == "Echo: look"


class TestErrorsAndTiming:
    def test_rate_limit(self, model: ScriptedModel, client: OpenAI) -> None:
        model.script("busy", Reply(status=429, error_message="Too many", retry_after=2))
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model="m", messages=user("busy"), stream=True)
        assert info.value.response.headers["retry-after"] == "2"
        assert info.value.code == "rate_limit_exceeded"
        assert "Too many" in info.value.message

    def test_server_error(self, model: ScriptedModel, client: OpenAI) -> None:
        model.script("boom", Reply(status=503))
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model="m", messages=user("boom"))
        assert info.value.status_code == 503
        assert "scripted error" in info.value.message

    def test_bad_request(self, model: ScriptedModel, client: OpenAI) -> None:
        model.script("bad", Reply(status=400, error_message="context_length_exceeded"))
        with pytest.raises(openai.BadRequestError, match="context_length_exceeded"):
            client.chat.completions.create(model="m", messages=user("bad"))

    def test_retries_then_success_with_sdk_retries(self, model: ScriptedModel) -> None:
        model.script("flaky", Reply(status=500), Reply(text="ok"))
        with OpenAI(base_url=model.base_url, api_key="x", max_retries=2) as retrying:
            assert _say(retrying, "flaky") == "ok"
        assert len(model.requests("flaky")) == 2

    def test_delay_and_chunk_delay(self, model: ScriptedModel, client: OpenAI) -> None:
        model.script("slow", Reply(text=["a", "b", "c"], delay=0.2, chunk_delay=0.1))
        started = time.monotonic()
        stream = client.chat.completions.create(model="m", messages=user("slow"), stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "abc"
        assert time.monotonic() - started >= 0.4

    def test_hang_until_the_client_leaves(self, model: ScriptedModel, client: OpenAI) -> None:
        model.script("hang", Reply(text=["partial", " answer"], hang=True))
        stream = client.chat.completions.create(model="m", messages=user("hang"), stream=True)
        pieces = []
        for c in stream:
            pieces.append(c.choices[0].delta.content)
            if pieces[-1] == " answer":
                break
        assert model.disconnects("hang") == []
        stream.close()
        _poll(lambda: len(model.disconnects("hang")) == 1)

    def test_hanging_stream_ends_when_the_server_stops(self) -> None:
        own = ScriptedModel().start()
        own.script("hang", Reply(text="x", hang=True))
        with httpx.Client(timeout=10) as http:
            body = {"model": "m", "messages": user("hang"), "stream": True}
            with http.stream("POST", f"{own.base_url}/chat/completions", json=body) as response:
                lines = response.iter_lines()
                assert next(lines).startswith("data: ")
                started = time.monotonic()
                own.stop()
                assert time.monotonic() - started < 5
                assert "data: [DONE]" not in list(lines)  # the body ends unfinished

    def test_models_and_unknown_routes(self, model: ScriptedModel, client: OpenAI) -> None:
        assert [m.id for m in client.models.list()] == ["gpt-4o", "gpt-4o-mini"]
        response = httpx.post(f"{model.base_url}/embeddings", json={})
        assert response.status_code == 404
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}


class TestRequestChecks:
    def test_tool_message_must_answer_a_tool_call(self, client: OpenAI) -> None:
        messages = [*user("x"), {"role": "tool", "tool_call_id": "nope", "content": "1"}]
        with pytest.raises(openai.BadRequestError, match="must be a response to a preceeding"):
            client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]

    def test_every_tool_call_needs_an_answer(self, client: OpenAI) -> None:
        call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        messages = [*user("x"), {"role": "assistant", "tool_calls": [call]}, *user("y")]
        with pytest.raises(openai.BadRequestError, match="did not have response messages: c1"):
            client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]

    def test_tool_choice_needs_tools(self, client: OpenAI) -> None:
        with pytest.raises(openai.BadRequestError, match="only allowed when 'tools'"):
            client.chat.completions.create(model="m", messages=user("x"), tool_choice="auto")

    def test_stream_options_need_stream(self, client: OpenAI) -> None:
        with pytest.raises(openai.BadRequestError, match="stream_options"):
            client.chat.completions.create(
                model="m", messages=user("x"), stream_options={"include_usage": True}
            )

    def test_empty_messages(self, client: OpenAI) -> None:
        with pytest.raises(openai.BadRequestError, match="too short"):
            client.chat.completions.create(model="m", messages=[])

    def test_not_strict(self) -> None:
        with ScriptedModel(strict=False) as lax, OpenAI(base_url=lax.base_url, api_key="x") as c:
            assert _say(c, "x", tool_choice="auto") == "Echo: x"


async def test_many_concurrent_streams(model: ScriptedModel) -> None:
    model.script("fast", Reply(text=["a", "b", "c", "d"]))
    async with AsyncOpenAI(
        base_url=model.base_url,
        api_key="x",
        max_retries=0,
        http_client=httpx.AsyncClient(limits=httpx.Limits(max_connections=None)),
    ) as client:

        async def one(i: int) -> str:
            stream = await client.chat.completions.create(
                model="m", messages=user(f"fast {i}"), stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

        texts = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(200))), 60)
    assert texts == ["abcd"] * 200
    assert len(model.requests("fast")) == 200


def _say(client: OpenAI, text: str, **kwargs: object) -> str | None:
    completion = client.chat.completions.create(model="m", messages=user(text), **kwargs)  # type: ignore[call-overload]
    return completion.choices[0].message.content


def _poll(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)

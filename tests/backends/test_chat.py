"""ChatBackend against httpx.MockTransport: parsing, retries, errors, cancellation."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import httpx
import pytest

from assistantd.backends import (
    BackendError,
    ChatBackend,
    ChatEvent,
    ChatRequest,
    Finish,
    ModelRoute,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from assistantd.backends.transport import HttpxTransport
from assistantd.settings import Settings

ROUTE = ModelRoute(
    name="gpt-4o",
    base_url="http://backend.test/v1",
    api_key="sk-upstream",
    upstream_model="llama3",
    context_window=8192,
    max_output_tokens=None,
)
REQUEST = ChatRequest(messages=[{"role": "user", "content": "hi"}])

Handler = Callable[[httpx.Request], Any]


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "model_max_retries": 3,
        "model_retry_base_seconds": 0.001,
        "model_retry_max_seconds": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


def backend(handler: Handler, **overrides: Any) -> ChatBackend:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    settings = make_settings(**overrides)
    return ChatBackend(HttpxTransport(http, settings), settings)


async def collect(chat: ChatBackend, request: ChatRequest = REQUEST) -> list[ChatEvent]:
    return [event async for event in chat.stream(ROUTE, request)]


def sse(*chunks: dict[str, Any] | str) -> bytes:
    lines = [c if isinstance(c, str) else json.dumps(c) for c in chunks]
    return b"".join(f"data: {line}\n\n".encode() for line in lines)


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
    }


def usage_chunk(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
    }


def stream_response(body: bytes | Iterable[bytes]) -> httpx.Response:
    return httpx.Response(
        200,
        headers={"content-type": "text/event-stream"},
        content=body if isinstance(body, bytes) else _aiter(body),
    )


async def _aiter(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


HELLO = sse(
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hel"}),
    chunk({"content": "lo"}),
    chunk(finish="stop"),
    usage_chunk(7, 2),
    "[DONE]",
)


class TestRequest:
    async def test_posts_stream_request_without_none_fields(self) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return stream_response(HELLO)

        request = ChatRequest(messages=[{"role": "user", "content": "hi"}], temperature=0.5)
        await collect(backend(handler), request)
        [sent] = seen
        assert sent.method == "POST"
        assert str(sent.url) == "http://backend.test/v1/chat/completions"
        assert sent.headers["authorization"] == "Bearer sk-upstream"
        assert json.loads(sent.content) == {
            "model": "llama3",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0.5,
        }

    async def test_sends_tools_and_options(self) -> None:
        bodies: list[dict[str, Any]] = []

        def handler(request: httpx.Request) -> httpx.Response:
            bodies.append(json.loads(request.content))
            return stream_response(HELLO)

        tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        request = ChatRequest(
            messages=[{"role": "user", "content": "hi"}],
            tools=[tool],
            tool_choice="required",
            parallel_tool_calls=False,
            top_p=0.9,
            max_tokens=100,
            response_format={"type": "json_object"},
            reasoning_effort="low",
        )
        await collect(backend(handler), request)
        body = bodies[0]
        assert body["tools"] == [tool]
        assert body["tool_choice"] == "required"
        assert body["parallel_tool_calls"] is False
        assert body["top_p"] == 0.9
        assert body["max_tokens"] == 100
        assert body["response_format"] == {"type": "json_object"}
        assert body["reasoning_effort"] == "low"

    async def test_tool_options_omitted_without_tools(self) -> None:
        bodies: list[dict[str, Any]] = []

        def handler(request: httpx.Request) -> httpx.Response:
            bodies.append(json.loads(request.content))
            return stream_response(HELLO)

        request = ChatRequest(
            messages=REQUEST.messages, tool_choice="none", parallel_tool_calls=True
        )
        await collect(backend(handler), request)
        assert "tools" not in bodies[0]
        assert "tool_choice" not in bodies[0]
        assert "parallel_tool_calls" not in bodies[0]

    async def test_no_authorization_without_key(self) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return stream_response(HELLO)

        chat = backend(handler)
        route = ModelRoute("m", "http://backend.test/v1", None, "m", 8192, None)
        _ = [event async for event in chat.stream(route, REQUEST)]
        assert "authorization" not in seen[0].headers


class TestParsing:
    async def test_text_finish_usage(self) -> None:
        events = await collect(backend(lambda _: stream_response(HELLO)))
        assert events == [TextDelta("Hel"), TextDelta("lo"), Finish("stop"), Usage(7, 2)]

    async def test_arbitrary_chunk_boundaries(self) -> None:
        body = HELLO.replace(b"\n\n", b"\r\n\r\n")
        pieces = [body[i : i + 3] for i in range(0, len(body), 3)]
        events = await collect(backend(lambda _: stream_response(pieces)))
        assert events == [TextDelta("Hel"), TextDelta("lo"), Finish("stop"), Usage(7, 2)]

    async def test_comments_event_names_and_multiline_data(self) -> None:
        body = (
            b": keep-alive\n\n"
            b"event: message\n"
            b'data: {"choices": [{"index": 0,\n'
            b'data: "delta": {"content": "x"}}]}\n\n'
            b'data:{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}\n\n'
            b"data: [DONE]\n\n"
        )
        events = await collect(backend(lambda _: stream_response(body)))
        assert events == [TextDelta("x"), Finish("length")]

    async def test_no_usage_when_upstream_sends_none(self) -> None:
        body = sse(chunk({"content": "a"}), chunk(finish="stop"), "[DONE]")
        events = await collect(backend(lambda _: stream_response(body)))
        assert events == [TextDelta("a"), Finish("stop")]

    async def test_usage_in_the_finish_chunk(self) -> None:
        last = chunk(finish="stop") | {"usage": {"prompt_tokens": 3, "completion_tokens": 1}}
        body = sse(chunk({"content": "a"}), last, "[DONE]")
        events = await collect(backend(lambda _: stream_response(body)))
        assert events == [TextDelta("a"), Finish("stop"), Usage(3, 1)]

    async def test_tool_call_deltas_pass_through(self) -> None:
        body = sse(
            chunk(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ],
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city"'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": ': "Paris"}'}}]}),
            chunk(
                {
                    "tool_calls": [
                        {"index": 1, "id": "call_b", "function": {"name": "now", "arguments": "{}"}}
                    ]
                }
            ),
            chunk(finish="tool_calls"),
            usage_chunk(10, 5),
            "[DONE]",
        )
        events = await collect(backend(lambda _: stream_response(body)))
        assert events == [
            ToolCallDelta(0, "call_a", "get_weather", ""),
            ToolCallDelta(0, None, None, '{"city"'),
            ToolCallDelta(0, None, None, ': "Paris"}'),
            ToolCallDelta(1, "call_b", "now", "{}"),
            Finish("tool_calls"),
            Usage(10, 5),
        ]

    async def test_stop_after_tool_calls_is_reported_as_tool_calls(self) -> None:
        call = {"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}
        body = sse(chunk({"tool_calls": [call]}), chunk(finish="stop"), "[DONE]")
        events = await collect(backend(lambda _: stream_response(body)))
        assert events[-1] == Finish("tool_calls")

    async def test_done_without_finish_reason_finishes_with_stop(self) -> None:
        body = sse(chunk({"content": "a"}), "[DONE]")
        events = await collect(backend(lambda _: stream_response(body)))
        assert events == [TextDelta("a"), Finish("stop")]

    async def test_events_are_yielded_as_they_arrive(self) -> None:
        first_seen = asyncio.Event()

        async def body() -> AsyncIterator[bytes]:
            yield sse(chunk({"content": "one"}))
            await asyncio.wait_for(first_seen.wait(), 5)  # the consumer has "one" already
            yield sse(chunk({"content": "two"}), chunk(finish="stop"), "[DONE]")

        def handler(_: httpx.Request) -> httpx.Response:
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=body()
            )

        events = []
        async for event in backend(handler).stream(ROUTE, REQUEST):
            events.append(event)
            first_seen.set()
        assert events == [TextDelta("one"), TextDelta("two"), Finish("stop")]

    async def test_non_streaming_json_body(self) -> None:
        completion = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Hello",
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "f", "arguments": '{"a": 1}'},
                            }
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10},
        }
        events = await collect(backend(lambda _: httpx.Response(200, json=completion)))
        assert events == [
            TextDelta("Hello"),
            ToolCallDelta(0, "call_1", "f", '{"a": 1}'),
            Finish("tool_calls"),
            Usage(4, 6),
        ]

    async def test_pretty_printed_json_with_wrong_content_type(self) -> None:
        completion = {
            "choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}]
        }
        body = json.dumps(completion, indent=2).encode()
        response = httpx.Response(200, headers={"content-type": "text/plain"}, content=body)
        events = await collect(backend(lambda _: response))
        assert events == [TextDelta("hi"), Finish("stop")]


class TestRetries:
    @staticmethod
    def flaky(*failures: httpx.Response | Exception) -> tuple[Handler, list[int]]:
        calls: list[int] = []

        def handler(request: httpx.Request) -> httpx.Response:
            calls.append(1)
            if len(calls) <= len(failures):
                failure = failures[len(calls) - 1]
                if isinstance(failure, Exception):
                    raise failure
                return failure
            return stream_response(HELLO)

        return handler, calls

    @pytest.mark.parametrize(
        "failure",
        [
            httpx.Response(429, json={"error": {"message": "slow down"}}),
            httpx.Response(500, json={"error": {"message": "boom"}}),
            httpx.Response(503, text="unavailable"),
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            httpx.RemoteProtocolError("peer closed"),
        ],
        ids=["429", "500", "503", "connect", "timeout", "protocol"],
    )
    async def test_retried_then_succeeds(self, failure: httpx.Response | Exception) -> None:
        handler, calls = self.flaky(failure, failure)
        events = await collect(backend(handler))
        assert events[-2:] == [Finish("stop"), Usage(7, 2)]
        assert len(calls) == 3

    @pytest.mark.parametrize(
        ("failure", "code"),
        [
            (httpx.Response(429, json={"error": {"message": "slow down"}}), "rate_limit_exceeded"),
            (httpx.Response(502, json={"error": {"message": "bad gateway"}}), "server_error"),
            (httpx.ConnectError("refused"), "server_error"),
            (httpx.ConnectTimeout("slow"), "server_error"),
        ],
        ids=["429", "502", "connect", "connect-timeout"],
    )
    async def test_exhausted_retries(self, failure: httpx.Response | Exception, code: str) -> None:
        handler, calls = self.flaky(*[failure] * 10)
        with pytest.raises(BackendError) as info:
            await collect(backend(handler, model_max_retries=2))
        assert info.value.code == code
        assert len(calls) == 3
        assert "http://backend.test/v1" in info.value.message
        assert "llama3" in info.value.message
        assert "gave up after 3 attempts" in info.value.message
        assert str(info.value) == info.value.message

    async def test_upstream_message_in_error(self) -> None:
        failure = httpx.Response(429, json={"error": {"message": "Rate limit reached for llama3"}})
        handler, _ = self.flaky(*[failure] * 10)
        with pytest.raises(BackendError) as info:
            await collect(backend(handler, model_max_retries=0))
        assert "HTTP 429" in info.value.message
        assert "Rate limit reached for llama3" in info.value.message

    @pytest.mark.parametrize("status", [400, 401, 404, 413, 422])
    async def test_client_errors_are_invalid_prompt_without_retry(self, status: int) -> None:
        failure = httpx.Response(status, json={"error": {"message": "context too long"}})
        handler, calls = self.flaky(failure)
        with pytest.raises(BackendError) as info:
            await collect(backend(handler))
        assert info.value.code == "invalid_prompt"
        assert "context too long" in info.value.message
        assert f"HTTP {status}" in info.value.message
        assert len(calls) == 1

    async def test_ollama_style_error_string(self) -> None:
        failure = httpx.Response(404, json={"error": "model 'llama3' not found"})
        handler, _ = self.flaky(failure)
        with pytest.raises(BackendError) as info:
            await collect(backend(handler))
        assert "model 'llama3' not found" in info.value.message

    @pytest.mark.parametrize(
        "error",
        [
            {"message": "Input too large.", "code": "context_length_exceeded"},  # OpenAI
            {"message": "This model's maximum context length is 4096 tokens."},  # vLLM
            {
                "code": 400,
                "message": "the request exceeds the available context size, try increasing it",
                "type": "exceed_context_size_error",
            },  # llama.cpp
        ],
    )
    async def test_a_prompt_too_long_says_so_without_retry(self, error: dict[str, Any]) -> None:
        handler, calls = self.flaky(httpx.Response(400, json={"error": error}))
        with pytest.raises(BackendError) as info:
            await collect(backend(handler))
        assert info.value.code == "context_length_exceeded"
        assert str(error["message"]) in info.value.message
        assert len(calls) == 1

    async def test_a_prompt_too_long_inside_the_stream_is_not_retried(self) -> None:
        error = sse({"error": {"message": "prompt is too long for the context window"}})
        handler, calls = self.flaky(stream_response(error))
        with pytest.raises(BackendError) as info:
            await collect(backend(handler))
        assert info.value.code == "context_length_exceeded"
        assert len(calls) == 1

    async def test_retry_after_is_honoured(self) -> None:
        failure = httpx.Response(429, headers={"retry-after": "0.3"}, json={"error": {}})
        handler, calls = self.flaky(failure)
        started = time.monotonic()
        await collect(backend(handler))
        assert time.monotonic() - started >= 0.3
        assert len(calls) == 2

    async def test_retry_after_ms_is_honoured(self) -> None:
        failure = httpx.Response(503, headers={"retry-after-ms": "250"}, json={"error": {}})
        handler, _ = self.flaky(failure)
        started = time.monotonic()
        await collect(backend(handler))
        assert time.monotonic() - started >= 0.25

    async def test_retry_after_is_capped(self) -> None:
        failure = httpx.Response(429, headers={"retry-after": "3600"}, json={"error": {}})
        handler, _ = self.flaky(failure)
        started = time.monotonic()
        await collect(backend(handler, model_retry_max_seconds=0.05))
        assert time.monotonic() - started < 5

    async def test_backoff_grows(self) -> None:
        failure = httpx.Response(500, json={"error": {}})
        handler, _ = self.flaky(failure, failure, failure)
        started = time.monotonic()
        await collect(backend(handler, model_retry_base_seconds=0.05))
        # 0.05 + 0.1 + 0.2, each jittered down to no less than half
        assert time.monotonic() - started >= 0.175

    async def test_error_inside_stream_before_output_is_retried(self) -> None:
        error = sse({"error": {"message": "overloaded", "type": "server_error"}})
        handler, calls = self.flaky(stream_response(error))
        events = await collect(backend(handler))
        assert events[-1] == Usage(7, 2)
        assert len(calls) == 2

    async def test_stream_ending_early_before_output_is_retried(self) -> None:
        handler, calls = self.flaky(stream_response(b""))
        await collect(backend(handler))
        assert len(calls) == 2


class TestFailuresAfterOutput:
    async def test_broken_stream_after_first_event_is_not_retried(self) -> None:
        calls: list[int] = []

        async def body() -> AsyncIterator[bytes]:
            yield sse(chunk({"content": "partial"}))
            raise httpx.ReadError("connection reset")

        def handler(_: httpx.Request) -> httpx.Response:
            calls.append(1)
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=body()
            )

        events: list[ChatEvent] = []

        async def consume() -> None:
            async for event in backend(handler).stream(ROUTE, REQUEST):
                events.append(event)

        with pytest.raises(BackendError) as info:
            await consume()
        assert events == [TextDelta("partial")]
        assert info.value.code == "server_error"
        assert "connection reset" in info.value.message
        assert len(calls) == 1

    async def test_stream_ending_early_after_output(self) -> None:
        body = sse(chunk({"content": "partial"}))
        with pytest.raises(BackendError) as info:
            await collect(backend(lambda _: stream_response(body)))
        assert info.value.code == "server_error"
        assert "before finishing" in info.value.message

    async def test_error_event_after_output(self) -> None:
        body = sse(chunk({"content": "a"}), {"error": {"message": "Rate limit hit"}})
        with pytest.raises(BackendError) as info:
            await collect(backend(lambda _: stream_response(body)))
        assert info.value.code == "rate_limit_exceeded"
        assert "Rate limit hit" in info.value.message

    async def test_broken_connection_after_finish_is_tolerated(self) -> None:
        async def body() -> AsyncIterator[bytes]:
            yield sse(chunk({"content": "a"}), chunk(finish="stop"), usage_chunk(1, 1))
            raise httpx.ReadError("reset")

        def handler(_: httpx.Request) -> httpx.Response:
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=body()
            )

        events = await collect(backend(handler))
        assert events == [TextDelta("a"), Finish("stop"), Usage(1, 1)]

    async def test_garbage_chunk(self) -> None:
        body = b"data: {not json\n\n"
        with pytest.raises(BackendError) as info:
            await collect(backend(lambda _: stream_response(body), model_max_retries=0))
        assert info.value.code == "server_error"
        assert "unreadable" in info.value.message

    async def test_invalid_base_url_is_not_retried(self) -> None:
        settings = make_settings()
        chat = ChatBackend(HttpxTransport(httpx.AsyncClient(), settings), settings)
        route = ModelRoute("m", "localhost:11434/v1", None, "m", 8192, None)
        with pytest.raises(BackendError) as info:
            _ = [event async for event in chat.stream(route, REQUEST)]
        assert info.value.code == "server_error"
        assert "invalid URL" in info.value.message


class Endless(httpx.AsyncByteStream):
    """An SSE body that never ends; records whether the client closed it."""

    def __init__(self) -> None:
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            yield sse(chunk({"content": "x"}))
            await asyncio.sleep(0.01)

    async def aclose(self) -> None:
        self.closed = True


class TestCancellation:
    @staticmethod
    def endless() -> tuple[Handler, Endless]:
        body = Endless()

        def handler(_: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

        return handler, body

    async def test_aclose_closes_the_response(self) -> None:
        handler, body = self.endless()
        events = backend(handler).stream(ROUTE, REQUEST)
        assert await anext(events) == TextDelta("x")
        await events.aclose()
        assert body.closed

    async def test_cancelling_the_consumer_closes_the_response(self) -> None:
        handler, body = self.endless()
        chat = backend(handler)
        got_one = asyncio.Event()

        async def consume() -> None:
            async for _ in chat.stream(ROUTE, REQUEST):
                got_one.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(got_one.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert body.closed


def token(text: str, logprob: float, top: list[tuple[str, float]] | None = None) -> dict[str, Any]:
    return {
        "token": text,
        "logprob": logprob,
        "bytes": list(text.encode()),
        "top_logprobs": [
            {"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in top or []
        ],
    }


class TestReasoningAndLogprobs:
    @pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
    async def test_reasoning_deltas_before_the_text(self, field: str) -> None:
        body = sse(
            chunk({"role": "assistant", "content": ""}),
            chunk({field: "Think", "content": None}),
            chunk({field: "ing."}),
            chunk({"content": "Hi"}),
            chunk(finish="stop"),
            {
                **usage_chunk(7, 20),
                "usage": {
                    "prompt_tokens": 7,
                    "completion_tokens": 20,
                    "completion_tokens_details": {"reasoning_tokens": 14},
                },
            },
            "[DONE]",
        )
        events = await collect(backend(lambda _: stream_response(body)))
        assert events == [
            ReasoningDelta("Think"),
            ReasoningDelta("ing."),
            TextDelta("Hi"),
            Finish("stop"),
            Usage(7, 20, reasoning_tokens=14),
        ]

    async def test_a_server_sending_both_names_is_read_once(self) -> None:
        body = sse(chunk({"reasoning_content": "Hm.", "reasoning": "Hm."}), chunk(finish="stop"))
        events = await collect(backend(lambda _: stream_response(body)))
        assert events == [ReasoningDelta("Hm."), Finish("stop")]

    async def test_non_streaming_body_with_reasoning_and_logprobs(self) -> None:
        completion = {
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hi", "reasoning_content": "Hm."},
                    "logprobs": {"content": [token("Hi", -0.5)]},
                    "finish_reason": "stop",
                }
            ],
        }
        events = await collect(backend(lambda _: httpx.Response(200, json=completion)))
        assert events == [
            ReasoningDelta("Hm."),
            TextDelta("Hi", [token("Hi", -0.5)]),
            Finish("stop"),
        ]

    async def test_logprobs_are_asked_for_and_parsed(self) -> None:
        bodies: list[dict[str, Any]] = []
        logprobs = {"content": [token("Hel", -0.25, [("Hel", -0.25), ("He", -2.0)])]}

        def handler(request: httpx.Request) -> httpx.Response:
            bodies.append(json.loads(request.content))
            return stream_response(
                sse(
                    {
                        **chunk({"content": "Hel"}),
                        "choices": [
                            {"index": 0, "delta": {"content": "Hel"}, "logprobs": logprobs}
                        ],
                    },
                    chunk(finish="stop"),
                    "[DONE]",
                )
            )

        request = ChatRequest(messages=[{"role": "user", "content": "hi"}], logprobs=True)
        request.top_logprobs = 2
        events = await collect(backend(handler), request)
        assert bodies[0]["logprobs"] is True
        assert bodies[0]["top_logprobs"] == 2
        assert events[0] == TextDelta("Hel", logprobs["content"])

    async def test_logprobs_without_bytes_get_the_tokens_utf8(self) -> None:
        given = {"content": [{"token": "é", "logprob": -1, "top_logprobs": None}]}
        body = sse(
            {"choices": [{"index": 0, "delta": {"content": "é"}, "logprobs": given}]},
            chunk(finish="stop"),
        )
        events = await collect(backend(lambda _: stream_response(body)))
        assert events[0] == TextDelta(
            "é", [{"token": "é", "logprob": -1.0, "bytes": [195, 169], "top_logprobs": []}]
        )

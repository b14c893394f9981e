"""One model turn over an OpenAI-compatible Chat Completions backend, streamed.

`ChatBackend.stream(route, request)` POSTs `{base_url}/chat/completions` with `stream: true` and
`stream_options: {include_usage: true}` and yields `ChatEvent`s as the bytes arrive:

- `ReasoningDelta` for each fragment of the model's reasoning (`delta.reasoning_content`, as
  vLLM, DeepSeek and llama.cpp send it, or `delta.reasoning`, as Ollama and newer vLLM do);
- `TextDelta` for each content fragment, with the fragment's token log probabilities when
  they were asked for (`ChatRequest.logprobs`);
- `ToolCallDelta` for each tool-call fragment: its `index`, the `id` and `name` when the chunk
  carries them, and the next fragment of the JSON `arguments`;
- exactly one `Finish`, after the deltas (a backend that says `stop` after emitting tool calls
  is reported as `tool_calls`; unknown reasons become `stop`);
- then one `Usage` if the backend reported any (with its `reasoning_tokens`, when it says).

An upstream that answers with a plain `chat.completion` JSON body despite `stream: true` works
too: its content, tool calls, finish reason and usage come out as the same events.

Failures raise `BackendError`, whose `code` is what a run's `last_error.code` should say. A 429,
408, 409, 5xx, timeout, broken connection, or an error inside the stream is retried, with
exponential backoff and jitter (and at least `Retry-After`), but only while nothing has been
yielded; after that the turn fails. Other 4xx answers are the prompt's fault and are not retried.
If the connection breaks after `Finish`, the turn is complete and the stream just ends.

Stopping the iteration (`aclose()`, or cancelling the consuming task) closes the HTTP response at
once, which closes its connection, so the backend stops generating.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from assistantd.backends.failures import (
    AttemptFailure,
    BackendError,
    describe,
    error_body_failure,
    status_failure,
    transport_failure,
)
from assistantd.backends.logprobs import LogProb, parse_logprobs
from assistantd.backends.routing import ModelRoute
from assistantd.backends.sse import SSEDecoder
from assistantd.backends.transport import BadURL, ModelTransport, Reply, TransportError
from assistantd.kit.text import loads_scrubbed
from assistantd.settings import Settings

__all__ = [
    "BackendError",
    "ChatBackend",
    "ChatEvent",
    "ChatRequest",
    "Finish",
    "FinishReason",
    "LogProb",
    "ReasoningDelta",
    "TextDelta",
    "ToolCallDelta",
    "Usage",
    "make_http_client",
]

log = logging.getLogger(__name__)

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]

_FINISH_ALIASES: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "max_tokens": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


@dataclass
class ChatRequest:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    logprobs: bool = False  # ask for the answer's token log probabilities
    top_logprobs: int | None = None  # and this many alternatives at each token
    # More Chat Completions parameters, as the request set them (penalties, caching and
    # service-tier hints, `safety_identifier`, `user`, `verbosity`); never the ones above.
    extra: dict[str, Any] = field(default_factory=dict)
    # The answer's text is the input of a call of this function (a custom tool's input under
    # its grammar, `backends.constrained`); not sent.
    constrained_call: str | None = None

    def payload(self, model: str) -> dict[str, Any]:
        """The request body; `None` fields are left out, and so are the tool options when
        there are no tools (OpenAI rejects `tool_choice` without `tools`)."""
        body: dict[str, Any] = {
            "model": model,
            "messages": self.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.tools:
            body["tools"] = self.tools
            if self.tool_choice is not None:
                body["tool_choice"] = self.tool_choice
            if self.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = self.parallel_tool_calls
        optional = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "response_format": self.response_format,
            "reasoning_effort": self.reasoning_effort,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        if self.logprobs:
            body["logprobs"] = True
            if self.top_logprobs:
                body["top_logprobs"] = self.top_logprobs
        for key, value in self.extra.items():
            body.setdefault(key, value)
        return body


@dataclass
class TextDelta:
    text: str
    logprobs: list[LogProb] | None = None  # the fragment's tokens, when asked for


@dataclass
class ReasoningDelta:
    text: str


@dataclass
class ToolCallDelta:
    index: int
    id: str | None
    name: str | None
    arguments: str  # the next fragment of the JSON arguments, possibly ""


@dataclass
class Finish:
    reason: FinishReason


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int | None = None  # of completion_tokens; None: not reported


ChatEvent = ReasoningDelta | TextDelta | ToolCallDelta | Finish | Usage


@dataclass
class _Progress:
    yielded: bool = False  # an event reached the consumer: no more retries
    saw_tool_calls: bool = False
    finished: bool = False
    done: bool = False  # `data: [DONE]` arrived
    usage: Usage | None = None


def make_http_client(settings: Settings) -> httpx.AsyncClient:
    """The shared client for model backends, sized for many concurrent streams."""
    return httpx.AsyncClient(
        limits=httpx.Limits(
            max_connections=settings.model_max_connections,
            max_keepalive_connections=min(settings.model_max_connections, 100),
        ),
        timeout=httpx.Timeout(
            connect=settings.model_connect_timeout_seconds,
            read=settings.model_read_timeout_seconds,
            write=settings.model_read_timeout_seconds,
            pool=settings.model_read_timeout_seconds,
        ),
    )


class ChatBackend:
    def __init__(self, transport: ModelTransport, settings: Settings) -> None:
        self._transport = transport
        self._settings = settings

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def stream(
        self, route: ModelRoute, request: ChatRequest
    ) -> AsyncGenerator[ChatEvent, None]:
        """The events of one model turn; raises `BackendError`. `aclose()` it to stop early."""
        payload = request.payload(route.upstream_model)
        if route.forced_calls is not None:
            payload = route.forced_calls.payload(payload)
        attempt = 0
        while True:
            attempt += 1
            progress = _Progress()
            try:
                async with aclosing(self._attempt(route, payload, progress)) as events:
                    async for event in events:
                        progress.yielded = True
                        yield event
                return
            except AttemptFailure as failure:
                retries = self._settings.model_max_retries
                if progress.yielded or not failure.retryable or attempt > retries:
                    if attempt > 1:
                        failure.message += f" (gave up after {attempt} attempts)"
                    raise BackendError(failure.code, failure.message) from failure
                delay = self._delay(attempt, failure.retry_after)
                log.warning(
                    "model call failed, retry %d/%d in %.2fs: %s",
                    attempt,
                    retries,
                    delay,
                    failure.message,
                )
                await asyncio.sleep(delay)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = self._settings.model_retry_base_seconds * 2.0 ** (attempt - 1)
        delay = backoff * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self._settings.model_retry_max_seconds)

    async def _attempt(
        self, route: ModelRoute, payload: dict[str, Any], progress: _Progress
    ) -> AsyncGenerator[ChatEvent, None]:
        url = f"{route.base_url}/chat/completions"
        headers = {"Accept": "text/event-stream"}
        if route.api_key:
            headers["Authorization"] = f"Bearer {route.api_key}"
        who = describe(route)
        try:
            async with self._transport.post(url, payload, headers) as reply:
                if not 200 <= reply.status < 300:
                    raise status_failure(who, await reply.answer())
                async for event in _decode(who, reply, progress):
                    yield event
        except BadURL as exc:
            raise AttemptFailure(
                "server_error",
                f"The {who} has an invalid URL ({exc}); fix ASSISTANTD_MODEL_BASE_URL or the "
                "models file.",
                retryable=False,
            ) from exc
        except TransportError as exc:
            if progress.finished:  # the answer is complete; only the goodbye was lost
                log.warning("model stream broke after it finished: %r", exc)
                if progress.usage is not None:
                    yield progress.usage
                return
            raise transport_failure(who, exc, self._settings, mid_stream=progress.yielded) from exc


async def _decode(who: str, reply: Reply, progress: _Progress) -> AsyncIterator[ChatEvent]:
    decoder = SSEDecoder()
    json_body: list[str] | None = None  # set when the body turns out to be plain JSON
    sniffed = False
    async for line in reply.lines():
        if progress.done:
            continue  # drain what follows [DONE], so the connection can be reused
        if json_body is not None:
            json_body.append(line)
            continue
        if not sniffed:
            if not line.strip():
                continue
            sniffed = True
            if line.lstrip().startswith("{"):
                json_body = [line]
                continue
        sse = decoder.feed(line)
        if sse is not None:
            for event in _sse_events(who, sse.event, sse.data, progress):
                yield event
    sse = decoder.flush()
    if sse is not None and not progress.done:
        for event in _sse_events(who, sse.event, sse.data, progress):
            yield event
    if json_body is not None:
        for event in _completion_events(who, "\n".join(json_body), progress):
            yield event
    elif not progress.finished and not progress.done:
        raise AttemptFailure(
            "server_error",
            f"The {who} ended its response before finishing it.",
            retryable=True,
        )
    if not progress.finished:
        progress.finished = True
        yield Finish(_finish_reason(None, progress))
    if progress.usage is not None:
        yield progress.usage


def _sse_events(who: str, name: str, data: str, progress: _Progress) -> list[ChatEvent]:
    if data.strip() == "[DONE]":
        progress.done = True
        return []
    try:
        chunk = loads_scrubbed(data)  # a model's NUL or half a surrogate pair is no text
    except json.JSONDecodeError as exc:
        raise AttemptFailure(
            "server_error",
            f"The {who} sent an unreadable stream chunk: {data[:200]!r}",
            retryable=True,
        ) from exc
    if not isinstance(chunk, dict):
        raise AttemptFailure(
            "server_error", f"The {who} sent an unexpected chunk: {data[:200]!r}", retryable=True
        )
    if name == "error" or "error" in chunk:
        raise error_body_failure(who, chunk)
    return _chunk_events(chunk, progress, key="delta")


def _completion_events(who: str, text: str, progress: _Progress) -> list[ChatEvent]:
    try:
        body = loads_scrubbed(text)
    except json.JSONDecodeError as exc:
        raise AttemptFailure(
            "server_error", f"The {who} sent an unreadable body: {text[:200]!r}", retryable=True
        ) from exc
    if not isinstance(body, dict) or "error" in body:
        raise error_body_failure(who, body if isinstance(body, dict) else {"error": body})
    return _chunk_events(body, progress, key="message")


def _chunk_events(chunk: dict[str, Any], progress: _Progress, *, key: str) -> list[ChatEvent]:
    """Events of a `chat.completion.chunk` (`key="delta"`) or a `chat.completion` ("message")."""
    events: list[ChatEvent] = []
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue  # we ask for one choice
        delta = choice.get(key) or {}
        # One fragment, under either name (a server that sends both sends the same text).
        thought = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(thought, str) and thought:
            events.append(ReasoningDelta(thought))
        logprobs = parse_logprobs(choice.get("logprobs"))
        for text_key in ("content", "refusal"):
            text = delta.get(text_key)
            if isinstance(text, str) and text:
                events.append(TextDelta(text, logprobs))
                logprobs = None
        if logprobs:  # tokens without text (a server that splits them): still the answer's
            events.append(TextDelta("", logprobs))
        for position, call in enumerate(delta.get("tool_calls") or ()):
            function = call.get("function") or {}
            arguments = function.get("arguments")
            if arguments is None:
                arguments = ""
            elif not isinstance(arguments, str):  # some servers send an object
                arguments = json.dumps(arguments)
            index = call.get("index")
            progress.saw_tool_calls = True
            events.append(
                ToolCallDelta(
                    index=index if isinstance(index, int) else position,
                    id=call.get("id") or None,
                    name=function.get("name") or None,
                    arguments=arguments,
                )
            )
        reason = choice.get("finish_reason")
        if reason and not progress.finished:
            progress.finished = True
            events.append(Finish(_finish_reason(str(reason), progress)))
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        details = usage.get("completion_tokens_details")
        reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
        progress.usage = Usage(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            reasoning_tokens=int(reasoning) if isinstance(reasoning, int | float) else None,
        )
    return events


def _finish_reason(reason: str | None, progress: _Progress) -> FinishReason:
    normal = _FINISH_ALIASES.get(reason or "stop", "stop")
    if normal == "stop" and progress.saw_tool_calls:
        return "tool_calls"
    return normal

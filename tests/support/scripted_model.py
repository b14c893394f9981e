"""A scripted OpenAI-compatible Chat Completions server over real HTTP, for tests and benches.

It runs uvicorn in a background thread (its own event loop) on 127.0.0.1 and a free port, so a
test scripts it with plain calls while assistantd, another process, talks to it over HTTP:

    model = ScriptedModel().start()          # model.base_url == "http://127.0.0.1:PORT/v1"
    model.script("weather", Reply(tool_calls=[ToolCall("get_weather", '{"city": "Paris"}')]),
                 Reply(text="It is sunny."))
    ...
    model.requests("weather")                 # the request bodies received, in order
    model.stop()

`ScriptedModel(host="0.0.0.0")` listens on every address (for clients in containers);
`model.clients(match)` gives the address each request came from.

`GET /v1/models` lists `models`; what backends add to say how large a model's context window is
can be served too: `model_info` (fields merged into a model's `/v1/models` entry, e.g. vLLM's
`{"max_model_len": 4096}` or llama.cpp's `{"meta": {"n_ctx_train": 32768}}`), `props` (the body of
llama.cpp's `GET /props`) and `ollama_show` (by model, the body of Ollama's `POST /api/show`).
Unset, those routes answer 404 as a plain server's do; `hits(path)` counts the requests of a path.

A rule matches a request whose `messages`, serialised with `json.dumps(messages,
ensure_ascii=False)`, contain its `match` string; each match takes the rule's next reply, and the
last one repeats once they are used up. The newest matching rule wins. Without a match the model
echoes: "Echo: <last user text>". A reply may also be a function of the request body that returns
the `Reply` (for a client whose tool names are only known from the request, e.g. Codex CLI's).

Replies stream exactly as OpenAI streams them (`chat.completion.chunk` objects in SSE
`data: ...` lines, a role chunk, reasoning chunks as reasoning servers send them (vLLM's and
DeepSeek's `reasoning_content`, or Ollama's `reasoning`: `Reply.reasoning_field`), content
chunks (each one token, with its `logprobs` when the request asks: `Reply.logprobs`, else made
up), each tool call as a chunk with its id and name
and then argument fragments, a finish chunk, a usage chunk when `stream_options.include_usage`,
then `data: [DONE]`), or as one `chat.completion` with `stream: false`. Requests are checked as
OpenAI checks them (for example, tool messages must answer the tool calls before them); a bad
request gets OpenAI's 400 error, so a client bug shows up here rather than against a real
backend. `ScriptedModel(strict=False)` turns the checks off.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from assistantd.backends.tokens import (
    estimate_message_tokens,
    estimate_tokens,
    estimate_tools_tokens,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ARGUMENT_FRAGMENT = 8  # characters of tool-call arguments per stream chunk


@dataclass
class ToolCall:
    name: str
    arguments: str
    id: str | None = None  # a fresh "call_..." each time the reply is served, if None


@dataclass
class Reply:
    text: str | list[str] = ""  # a list is the exact stream chunks
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None  # default: "tool_calls" if tool_calls else "stop"
    usage: tuple[int, int] | None = None  # (prompt, completion); default: estimated
    status: int = 200  # non-200: an OpenAI error body with this status
    error_message: str = "scripted error"
    retry_after: float | None = None  # Retry-After header on errors
    delay: float = 0.0  # before the response starts
    chunk_delay: float = 0.0  # between stream chunks
    hang: bool = False  # stream the text, then never finish (until the client leaves or stop())
    reasoning: str | list[str] = ""  # streamed before the text; a list is the exact chunks
    reasoning_field: str = "reasoning_content"  # or "reasoning" (Ollama, newer vLLM)
    reasoning_tokens: int | None = None  # usage's completion_tokens_details; default: estimated
    logprobs: list[float] | None = None  # each text chunk's, when asked; default: made up


ReplyFor = Callable[[dict[str, Any]], Reply]  # a reply made from the request body


@dataclass
class _Rule:
    match: str
    replies: list[Reply | ReplyFor]
    used: int = 0

    def take(self) -> Reply | ReplyFor:
        reply = self.replies[min(self.used, len(self.replies) - 1)]
        self.used += 1
        return reply


@dataclass
class _Seen:
    body: dict[str, Any]
    headers: dict[str, str]
    messages_json: str
    client: str = ""  # the peer's IP address
    disconnected: bool = False


class ScriptedModel:
    def __init__(
        self,
        *,
        models: Sequence[str] = ("gpt-4o", "gpt-4o-mini"),
        strict: bool = True,
        host: str = "127.0.0.1",
        model_info: Mapping[str, Mapping[str, Any]] | None = None,
        props: Mapping[str, Any] | None = None,
        ollama_show: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.models = list(models)
        self.strict = strict
        self.host = host
        self.model_info = {name: dict(info) for name, info in (model_info or {}).items()}
        self.props = dict(props) if props is not None else None
        self.ollama_show = {name: dict(body) for name, body in (ollama_show or {}).items()}
        self._hits: dict[str, int] = {}
        self.port = 0
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._seen: list[_Seen] = []
        self._stopping = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 10.0) -> ScriptedModel:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self,
            host=self.host,
            port=self.port,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            backlog=4096,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="scripted-model", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the scripted model server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None

    def __enter__(self) -> ScriptedModel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting ---------------------------------------------------------------------------

    def script(self, match: str, *replies: Reply | ReplyFor) -> None:
        """Requests whose messages contain `match` take these replies in order (last repeats)."""
        if not replies:
            raise ValueError("script() needs at least one reply")
        with self._lock:
            self._rules.append(_Rule(match, list(replies)))

    def requests(self, match: str | None = None) -> list[dict[str, Any]]:
        """The request bodies received (whose messages contain `match`), in order."""
        return [seen.body for seen in self._select(match)]

    def headers(self, match: str | None = None) -> list[dict[str, str]]:
        """The request headers (lower-case names), parallel to `requests(match)`."""
        return [seen.headers for seen in self._select(match)]

    def clients(self, match: str | None = None) -> list[str]:
        """The IP address each request came from, parallel to `requests(match)`."""
        return [seen.client for seen in self._select(match)]

    def disconnects(self, match: str | None = None) -> list[dict[str, Any]]:
        """The request bodies whose client went away before the response finished."""
        return [seen.body for seen in self._select(match) if seen.disconnected]

    def wait_requests(
        self, count: int, match: str | None = None, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Poll until at least `count` matching requests arrived; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.requests(match)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} requests matching {match!r} arrived")
            time.sleep(0.01)

    def clear(self) -> None:
        """Forget the rules and the requests seen."""
        with self._lock:
            self._rules.clear()
            self._seen.clear()
            self._hits.clear()

    def hits(self, path: str) -> int:
        """How many requests `path` (e.g. "/v1/models") has had."""
        with self._lock:
            return self._hits.get(path, 0)

    def _select(self, match: str | None) -> list[_Seen]:
        with self._lock:
            return [s for s in self._seen if match is None or match in s.messages_json]

    def _reply_for(self, seen: _Seen) -> Reply | None:
        with self._lock:
            reply = next(
                (rule.take() for rule in reversed(self._rules) if rule.match in seen.messages_json),
                None,
            )
        return reply(seen.body) if callable(reply) else reply

    # --- ASGI --------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"].rstrip("/")
        method = scope["method"]
        with self._lock:
            self._hits[path] = self._hits.get(path, 0) + 1
        if path == "/v1/models" and method == "GET":
            created = int(time.time())
            data = [
                {
                    "id": name,
                    "object": "model",
                    "created": created,
                    "owned_by": "scripted",
                    **self.model_info.get(name, {}),
                }
                for name in self.models
            ]
            await _send_json(send, 200, {"object": "list", "data": data})
        elif path == "/v1/chat/completions" and method == "POST":
            await self._chat(scope, receive, send)
        elif path == "/props" and method == "GET" and self.props is not None:
            await _send_json(send, 200, self.props)
        elif path == "/api/show" and method == "POST" and self.ollama_show:
            await self._ollama_show(receive, send)
        else:
            await _send_error(send, 404, f"Unknown route {method} {scope['path']}")

    async def _ollama_show(self, receive: Receive, send: Send) -> None:
        raw = bytearray()
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        try:
            name = json.loads(raw).get("model")
        except (json.JSONDecodeError, AttributeError):
            name = None
        shown = self.ollama_show.get(str(name))
        if shown is None:
            await _send_json(send, 404, {"error": f"model '{name}' not found"})
        else:
            await _send_json(send, 200, shown)

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            await _send_error(send, 400, "We could not parse the JSON body of your request.")
            return
        if not isinstance(body, dict):
            await _send_error(send, 400, "The request body must be a JSON object.")
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        messages = body.get("messages")
        client = scope.get("client")
        seen = _Seen(
            body, headers, json.dumps(messages, ensure_ascii=False), client[0] if client else ""
        )
        with self._lock:
            self._seen.append(seen)
        problem = _check(body) if self.strict else None
        if problem is not None:
            await _send_error(send, 400, problem)
            return
        reply = self._reply_for(seen) or _echo(body["messages"])
        disconnected = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, disconnected))
        try:
            if reply.delay and await _pause(disconnected, reply.delay):
                seen.disconnected = True
                return
            if reply.status != 200:
                await _send_error(send, reply.status, reply.error_message, reply.retry_after)
                return
            completion = _Completion(body, reply)
            if not body.get("stream"):
                await _send_json(send, 200, completion.whole())
                return
            finished = await self._stream(send, disconnected, completion, reply)
            seen.disconnected = not finished
        finally:
            watcher.cancel()

    async def _stream(
        self, send: Send, disconnected: asyncio.Event, completion: _Completion, reply: Reply
    ) -> bool:
        """Stream the reply; False if the client went away first."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        first = True
        for chunk in completion.chunks():
            if chunk is _HANG:
                if not await self._hang(disconnected):
                    return False
                break  # the server is stopping: end the body unfinished
            if not first and reply.chunk_delay and await _pause(disconnected, reply.chunk_delay):
                return False
            first = False
            if disconnected.is_set():
                return False
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True

    async def _hang(self, disconnected: asyncio.Event) -> bool:
        """Wait for the client to leave (False) or the server to stop (True)."""
        while not self._stopping.is_set():
            if await _pause(disconnected, 0.05):
                return False
        return True


_HANG = b"<hang>"


class _Completion:
    """One reply rendered as OpenAI renders a completion, streamed or whole."""

    def __init__(self, request: dict[str, Any], reply: Reply) -> None:
        self.id = "chatcmpl-" + secrets.token_hex(12)
        self.created = int(time.time())
        self.model = str(request.get("model"))
        self.reply = reply
        options = request.get("stream_options") or {}
        self.include_usage = bool(options.get("include_usage"))
        self.pieces = reply.text if isinstance(reply.text, list) else _words(reply.text)
        self.text = "".join(self.pieces)
        given = reply.reasoning
        self.thoughts = given if isinstance(given, list) else _words(given)
        self.reasoning = "".join(self.thoughts)
        self.logprobs = bool(request.get("logprobs"))
        self.top_logprobs = int(request.get("top_logprobs") or 0)
        self.calls = [(call.id or _call_id(), call) for call in reply.tool_calls]
        self.finish_reason = reply.finish_reason or ("tool_calls" if self.calls else "stop")
        prompt, completion = reply.usage or self._estimate(request)
        reasoning_tokens = reply.reasoning_tokens
        if reasoning_tokens is None:
            reasoning_tokens = estimate_tokens(self.reasoning) if self.reasoning else 0
        self.usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _estimate(self, request: dict[str, Any]) -> tuple[int, int]:
        prompt = estimate_message_tokens(request.get("messages") or [])
        prompt += estimate_tools_tokens(request.get("tools") or [])
        output = estimate_tokens(self.text) + estimate_tokens(self.reasoning)
        output += sum(estimate_tokens(c.name + c.arguments) + 4 for _, c in self.calls)
        return prompt, max(output, 1)

    def whole(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self.text if self.text or not self.calls else None,
            "refusal": None,
            "annotations": [],
        }
        if self.reasoning:
            message[self.reply.reasoning_field] = self.reasoning
        if self.calls:
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call_id, call in self.calls
            ]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": {"content": self._logprobs(self.pieces), "refusal": None}
                    if self.logprobs
                    else None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": self.usage,
            "service_tier": "default",
            "system_fingerprint": "fp_scripted",
        }

    def chunks(self) -> Iterable[bytes]:
        """SSE lines; `_HANG` marks where a hanging reply stops."""
        role: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
        if self.pieces or self.thoughts or not self.calls:
            yield self._chunk(role)
            role = {}
        for thought in self.thoughts:
            yield self._chunk({self.reply.reasoning_field: thought})
        for number, piece in enumerate(self.pieces):
            logprobs = None
            if self.logprobs:
                logprobs = {"content": self._logprobs([piece], number), "refusal": None}
            yield self._chunk({"content": piece}, logprobs=logprobs)
        for index, (call_id, call) in enumerate(self.calls):
            head = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            if role:
                role["content"] = None
            yield self._chunk({**role, "tool_calls": [head]})
            role = {}
            args = call.arguments
            for start in range(0, len(args), ARGUMENT_FRAGMENT):
                fragment = args[start : start + ARGUMENT_FRAGMENT]
                yield self._chunk(
                    {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
                )
        if self.reply.hang:
            yield _HANG
        yield self._chunk({}, self.finish_reason)
        if self.include_usage:
            yield _sse(self._envelope([], self.usage))
        yield b"data: [DONE]\n\n"

    def _chunk(
        self,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        *,
        logprobs: dict[str, Any] | None = None,
    ) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
        return _sse(self._envelope([choice], None))

    def _logprobs(self, pieces: list[str], start: int = 0) -> list[dict[str, Any]]:
        """Chat Completions `logprobs.content` for text chunks (one token each), numbered from
        `start`: the reply's values, else made up (-0.1, -0.2, ...); `top_logprobs` alternatives
        (the token itself first, then `<token>~1`...), as many as the request asked for."""
        given = self.reply.logprobs
        out = []
        for number, token in enumerate(pieces, start):
            value = given[number] if given and number < len(given) else -0.1 * (number + 1)
            top = [
                {
                    "token": token if k == 0 else f"{token}~{k}",
                    "logprob": value if k == 0 else value - k,
                    "bytes": list((token if k == 0 else f"{token}~{k}").encode()),
                }
                for k in range(self.top_logprobs)
            ]
            out.append(
                {
                    "token": token,
                    "logprob": value,
                    "bytes": list(token.encode()),
                    "top_logprobs": top,
                }
            )
        return out

    def _envelope(
        self, choices: list[dict[str, Any]], usage: dict[str, Any] | None
    ) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": "fp_scripted",
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = usage
        return chunk


def _echo(messages: list[dict[str, Any]]) -> Reply:
    last = ""
    for message in reversed(messages):
        if message.get("role") == "user":
            last = _text_of(message.get("content"))
            break
    return Reply(text=f"Echo: {last}")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _words(text: str) -> list[str]:
    """Word-sized stream chunks, each with its leading whitespace, as tokenizers split."""
    return re.findall(r"\s*\S+|\s+$", text)


def _call_id() -> str:
    return "call_" + secrets.token_urlsafe(18).replace("-", "A").replace("_", "b")


def _check(body: dict[str, Any]) -> str | None:
    """OpenAI's 400 message for a malformed request, if it is one."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "[] is too short - 'messages'"
    if body.get("stream_options") is not None and not body.get("stream"):
        return "The 'stream_options' parameter is only allowed when 'stream' is enabled."
    if body.get("tool_choice") is not None and not body.get("tools"):
        return (
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
            "specified."
        )
    if body.get("parallel_tool_calls") is not None and not body.get("tools"):
        return "Invalid value for 'parallel_tool_calls': only allowed when 'tools' are specified."
    pending: set[str] = set()  # tool calls of the last assistant message not answered yet
    answerable: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in {"system", "developer", "user", "assistant", "tool", "function"}:
            return (
                f"Invalid value: {role!r}. Supported values are: 'system', 'assistant', 'user', "
                f"'function', 'tool', and 'developer'. - 'messages[{i}].role'"
            )
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in answerable:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'."
                )
            pending.discard(call_id)
            continue
        if pending:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(sorted(pending))}"
            )
        answerable = set()
        if role == "assistant":
            answerable = {call.get("id") for call in message.get("tool_calls") or ()}
            pending = set(answerable)
    if pending:
        return (
            "An assistant message with 'tool_calls' must be followed by tool messages responding "
            f"to each 'tool_call_id'. The following tool_call_ids did not have response "
            f"messages: {', '.join(sorted(pending))}"
        )
    return None


async def _watch_disconnect(receive: Receive, disconnected: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    disconnected.set()


async def _pause(disconnected: asyncio.Event, seconds: float) -> bool:
    """Sleep; True if the client disconnected meanwhile."""
    try:
        await asyncio.wait_for(disconnected.wait(), seconds)
    except TimeoutError:
        return False
    return True


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


async def _send_json(
    send: Send, status: int, payload: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_error(
    send: Send, status: int, message: str, retry_after: float | None = None
) -> None:
    if status == 429:
        kind, code = "requests", "rate_limit_exceeded"
    elif status >= 500:
        kind, code = "server_error", None
    elif status == 404:
        kind, code = "invalid_request_error", "not_found"
    else:
        kind, code = "invalid_request_error", None
    headers = [] if retry_after is None else [(b"retry-after", f"{retry_after:g}".encode())]
    error = {"message": message, "type": kind, "param": None, "code": code}
    await _send_json(send, status, {"error": error}, headers)

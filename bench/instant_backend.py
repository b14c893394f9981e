"""The instant backend of `bench/peers.py`, `bench/codex_turn.py` and `bench/reasoning.py`: an
OpenAI-compatible Chat Completions server in a process of its own that answers at once, as a
plain server does.

- A streamed answer is `CHUNKS` (a model whose name starts with `REASONING_PREFIX` streams
  `REASONING` as `reasoning_content` first), then `data: [DONE]`, and the connection closes: a
  plain server's stream runs until it closes (`keep_streams`: a chunked body on a kept
  connection instead, as kinder servers send).
- A whole answer is the same text (and reasoning) in one `chat.completion`.
- `GET /v1/models` lists `MODEL`; `GET /v1/last` returns the last chat completions body it got,
  not counting requests with an `x-bench-direct` header (the benches' own direct calls).

Its listen backlog is large: 32 clients through a server that opens a connection per stream
would stall on connects otherwise.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import signal
import socket
import time
from typing import Any

MODEL = "scripted"
CHUNKS = [f"w{i} " for i in range(8)]
TEXT = "".join(CHUNKS)
REASONING = [f"thought {i}, " for i in range(8)]
REASONING_PREFIX = "reasoning-"  # models whose names start so reason before they answer


def _reasons(body: dict[str, Any]) -> bool:
    return str(body.get("model", "")).startswith(REASONING_PREFIX)


def _usage() -> dict[str, Any]:
    return {"prompt_tokens": 9, "completion_tokens": len(CHUNKS), "total_tokens": 17}


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": TEXT}
    if _reasons(body):
        message["reasoning_content"] = "".join(REASONING)
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", MODEL),
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": _usage(),
    }


def _stream_body(body: dict[str, Any]) -> bytes:
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", MODEL),
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return b"data: " + json.dumps({**base, "choices": [choice]}).encode() + b"\n\n"

    parts = [chunk({"role": "assistant", "content": ""})]
    if _reasons(body):
        parts += [chunk({"reasoning_content": text}) for text in REASONING]
    parts += [chunk({"content": text}) for text in CHUNKS]
    parts.append(chunk({}, "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {"choices": [], "usage": _usage()}
        parts.append(b"data: " + json.dumps({**base, **usage}).encode() + b"\n\n")
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


class _Connections:
    def __init__(self, keep_streams: bool) -> None:
        self.keep_streams = keep_streams
        self.last = b"{}"  # the last chat completions body received

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (x.partition(":") for x in lines[1:])
                }
                length = int(headers.get("content-length") or 0)
                raw = await reader.readexactly(length) if length else b""
                status, kind, payload = self._answer(method, path.rstrip("/"), headers, raw)
                close = kind == "text/event-stream" and not self.keep_streams
                close = close or headers.get("connection", "") == "close"
                out = f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n".encode()
                if kind == "text/event-stream" and self.keep_streams:
                    out += b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
                    payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
                elif kind == "text/event-stream":
                    out += b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
                else:
                    connection = "close" if close else "keep-alive"
                    length = f"Content-Length: {len(payload)}\r\n"
                    out += f"{length}Connection: {connection}\r\n\r\n".encode()
                writer.write(out + payload)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    def _answer(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[str, str, bytes]:
        """(status, content type, body)."""
        if method == "GET" and path.endswith("/last"):
            return "200 OK", "application/json", self.last
        if method == "GET" and path.endswith("/models"):
            model = {"id": MODEL, "object": "model", "created": 0, "owned_by": "bench"}
            return (
                "200 OK",
                "application/json",
                json.dumps({"object": "list", "data": [model]}).encode(),
            )
        if method == "POST" and path.endswith("/chat/completions"):
            if not headers.get("x-bench-direct"):
                self.last = raw
            body = json.loads(raw) if raw else {}
            if body.get("stream"):
                return "200 OK", "text/event-stream", _stream_body(body)
            return "200 OK", "application/json", json.dumps(_completion(body)).encode()
        missing = b'{"error": {"message": "not found", "type": "invalid_request_error"}}'
        return "404 Not Found", "application/json", missing


def _serve(sock: socket.socket, keep_streams: bool) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the bench's: terminate() ends it

    async def main() -> None:
        connections = _Connections(keep_streams)
        server = await asyncio.start_server(connections.serve, sock=sock, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class Backend:
    """The instant backend, started in a process of its own."""

    def __init__(self, *, keep_streams: bool = False) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc = multiprocessing.get_context("fork").Process(
            target=_serve, args=(self.sock, keep_streams), daemon=True
        )
        self.proc.start()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(10)
        self.sock.close()

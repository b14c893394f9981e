#!/usr/bin/env python3
"""Code interpreter benchmark: warm and first executions, and the quickstart's sinewave run.

    python3 bench/sandbox.py [--samples 200] [--new 8] [--runs 5] [--pool 2]

Needs Docker and the sandbox image (`assistantd sandbox build`). It prints a table:

- warm `print(1)` in an existing session: the sandbox round trip (SandboxManager.run) and a
  whole run through the API that does it (scripted model, polled with 5 ms intervals);
- the first execution in a new thread with a pool of `--pool` pre-started containers (their
  kernel has numpy, pandas and matplotlib imported): `print(1)`, then a cell importing them;
- the first execution in a new thread without a pool (a container started for it);
- the quickstart's sinewave run end to end (`assistantd serve`, SQLite, the scripted model:
  model turn, code, PNG stored as a file, second model turn, message with the image), each
  in a new thread served from the pool.

This is a benchmark that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import socket
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from openai import OpenAI  # noqa: E402
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

from assistantd.sandbox.containers import OWNER_LABEL  # noqa: E402
from assistantd.sandbox.docker import DockerClient  # noqa: E402
from assistantd.sandbox.manager import SandboxManager  # noqa: E402
from assistantd.settings import Settings  # noqa: E402

KEY = "sk-bench"
SINEWAVE = """import numpy as np
import matplotlib.pyplot as plt

x = np.linspace(0, 4 * np.pi, 1000)
y = np.sin(x)
plt.figure(figsize=(10, 5))
plt.plot(x, y, label="sin(x)")
plt.title("Sine Wave")
plt.grid(True)
plt.legend()
plt.show()
"""
IMPORTS = "import numpy as np, pandas as pd, matplotlib.pyplot as plt\nprint(1)"


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, list[float]]] = []

    def add(self, name: str, target: str, samples: list[float]) -> None:
        self.rows.append((name, target, samples))
        p50, p90 = self._percentiles(samples)
        print(f"  {name}: p50 {p50:.1f} ms, p90 {p90:.1f} ms (n={len(samples)})", flush=True)

    @staticmethod
    def _percentiles(samples: list[float]) -> tuple[float, float]:
        ordered = sorted(samples)
        p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
        return statistics.median(ordered), p90

    def print(self) -> None:
        width = max(len(name) for name, _, _ in self.rows)
        print()
        print(f"{'measure':<{width}}  {'target':>10}  {'p50 ms':>8}  {'p90 ms':>8}  {'n':>4}")
        for name, target, samples in self.rows:
            p50, p90 = self._percentiles(samples)
            print(f"{name:<{width}}  {target:>10}  {p50:8.1f}  {p90:8.1f}  {len(samples):4d}")


async def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


async def timed(action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    return (time.perf_counter() - started) * 1000


async def sandbox_figures(args: argparse.Namespace, table: Table) -> None:
    project = f"bench-{secrets.token_hex(3)}"
    pooled = SandboxManager(Settings(sandbox_pool_size=args.pool))
    cold = SandboxManager(Settings(sandbox_pool_size=0))
    used = []
    try:
        await pooled.check_available()
        await cold.check_available()

        async def first(manager: SandboxManager, code: str) -> None:
            session = manager.session(project, f"thread_{secrets.token_hex(8)}")
            used.append((manager, session))
            async with session.lock:
                outcome = await manager.run(session, code)
            assert outcome.output == "1\n", outcome

        def full() -> bool:
            return pooled.pooled >= args.pool

        for code, name in ((IMPORTS, "imports numpy/pandas/matplotlib"), ("print(1)", "print(1)")):
            samples = []
            for _ in range(args.new):
                await wait_for(full, 180, "the pool to fill")
                samples.append(await timed(lambda: first(pooled, code)))  # noqa: B023
            table.add(
                f"first exec, new thread, pool: {name}",
                "<= 50" if code == "print(1)" else "",
                samples,
            )

        samples = [await timed(lambda: first(cold, "print(1)")) for _ in range(args.new)]
        table.add("first exec, new thread, no pool: print(1)", "<= 600", samples)

        manager, session = used[-1]
        warm = []
        async with session.lock:
            for _ in range(args.samples):
                warm.append(await timed(lambda: manager.run(session, "print(1)")))  # noqa: B023
        table.add("warm print(1), sandbox round trip", "<= 20", warm)
    finally:
        for manager, session in used:
            if session.sandbox is not None:
                await manager.containers.remove(session.sandbox)
        await pooled.aclose()
        await cold.aclose()


async def remove_sessions_of(pid: int) -> None:
    """The server's session containers outlive it by design; the bench's should not."""
    docker = DockerClient(Settings().sandbox_docker_host)
    try:
        owner = f"{socket.gethostname()}:{pid}"
        for info in await docker.containers([f"{OWNER_LABEL}={owner}"]):
            await docker.remove(info["Id"])
    finally:
        await docker.aclose()


def server_figures(args: argparse.Namespace, table: Table) -> None:
    with tempfile.TemporaryDirectory(prefix="assistantd-bench-") as tmp, ScriptedModel() as model:
        env = {
            "ASSISTANTD_DATA_DIR": tmp,
            "ASSISTANTD_API_KEYS": f"bench:{KEY}",
            "ASSISTANTD_MODEL_BASE_URL": model.base_url,
            "ASSISTANTD_MODEL_API_KEY": "sk-scripted",
            "ASSISTANTD_SANDBOX_POOL_SIZE": str(args.pool),
            "ASSISTANTD_WORKER_POLL_SECONDS": "0.05",
        }
        server = LiveServer(env, Path(tmp) / "server.log").start()
        client = OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
        try:
            assistant = client.beta.assistants.create(
                model="gpt-4o", tools=[{"type": "code_interpreter"}]
            )

            def run(thread_id: str, code: str, text: str) -> float:
                tag = secrets.token_hex(6)
                model.script(
                    tag,
                    Reply(tool_calls=[ToolCall("python", json.dumps({"code": code}))]),
                    Reply(text=text),
                )
                client.beta.threads.messages.create(thread_id, role="user", content=tag)
                started = time.perf_counter()
                done = client.beta.threads.runs.create_and_poll(
                    thread_id=thread_id, assistant_id=assistant.id, poll_interval_ms=5
                )
                elapsed = (time.perf_counter() - started) * 1000
                assert done.status == "completed", done.last_error
                return elapsed

            # Warm-up: the server's pool fills, the first image write creates directories.
            time.sleep(args.refill)
            warm_thread = client.beta.threads.create()
            run(warm_thread.id, "print(1)", "1")
            samples = []
            for _ in range(args.runs):
                time.sleep(args.refill)  # the pool refills between new threads
                thread = client.beta.threads.create()
                samples.append(run(thread.id, SINEWAVE, "Here is the sine wave."))
                image = client.beta.threads.messages.list(thread.id).data[0].content[0]
                assert image.type == "image_file"
            table.add("sinewave run end to end, new thread, pool", "<= 1000", samples)
            samples = [run(warm_thread.id, "print(1)", "1") for _ in range(args.runs * 4)]
            table.add("warm print(1) run end to end (2 model turns)", "", samples)
        finally:
            client.close()
            assert server.proc is not None
            pid = server.proc.pid
            server.stop()
            asyncio.run(remove_sessions_of(pid))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="warm executions")
    parser.add_argument("--new", type=int, default=8, help="new threads per first-exec row")
    parser.add_argument("--runs", type=int, default=5, help="sinewave runs")
    parser.add_argument("--pool", type=int, default=2, help="ASSISTANTD_SANDBOX_POOL_SIZE")
    parser.add_argument(
        "--refill", type=float, default=5.0, help="seconds for the server's pool to refill"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the SDK's Assistants API
    table = Table()
    print("sandbox:", flush=True)
    asyncio.run(sandbox_figures(args, table))
    print("server:", flush=True)
    server_figures(args, table)
    table.print()


if __name__ == "__main__":
    main()

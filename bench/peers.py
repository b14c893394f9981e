#!/usr/bin/env python3
"""assistantd against its peers (LiteLLM, OGX) in front of one instant backend, side by side.

    python3 bench/peers.py [--quick] [--only assistantd,litellm,ogx] [--samples N]
                           [--load N] [--clients 32] [--assistantd LABEL=SRC ...]

One backend, in a process of its own, answers Chat Completions at once as a plain
OpenAI-compatible server does: a streamed answer is SSE ending in `data: [DONE]` after which it
closes the connection (so a client cannot reuse it), a non-streamed one is JSON on a kept-alive
connection. Every server under test is started in front of it on loopback:

- assistantd (`python -m assistantd serve`, SQLite, embedded worker) from this checkout's `src`,
  or from each `--assistantd LABEL=SRC` given (e.g. `--assistantd main=/work/main/src` next to
  `--assistantd branch=src` compares two trees in the same run);
- LiteLLM and OGX, from venvs the bench makes under `.tmp/peers-venv/` with Python >= 3.12 (see
  `../shared/reference/peer-configs/`; never the project's environment). A peer that does not
  install or start is reported in one line and the rest go on.

It prints, per server (p50 in ms over the direct backend, measured one request at a time,
round-robin across the servers and cells so that drift hits all alike):

- first text, streamed, `store` true and false: request sent -> first
  `response.output_text.delta`, against a direct streamed chat completion's first content chunk;
- non-streamed, `store` true and false: the whole answer, against a direct non-streamed
  completion;
- responses/s with `--clients` concurrent clients (streamed, `store` alternating true/false,
  read to the end), in rounds that rotate across the servers;
- `store: false` against `store: true`: the median of the per-round differences (each round
  has one of each, one after the other) with a 95% bootstrap interval, and in how many rounds
  `false` was the faster: whether unstored responses cost more than stored ones, told apart
  from the noise of two medians taken separately;
- server CPU ms per response during that load, from /proc (utime + stime of the server's
  process and its descendants);
- the server's CPU for each latency cell, taken around each request (schedstat of its threads):
  a figure the machine's load disturbs less than wall time, for A/B runs on a busy machine.

`--backend-keeps-streams` makes the backend keep the connection after a stream (chunked), as
kinder servers do, to see what a closed connection costs. Peers need Python >= 3.12 (pyenv's
3.12, else `python3.12` on PATH); their configs are read from `shared/reference/peer-configs`
beside the checkout (or beside its worktree folder), else from `--peer-configs DIR`.

Loopback only; every loop is bounded in count and by `--max-seconds`. A benchmark that prints
figures, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from instant_backend import MODEL, TEXT, Backend

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = ROOT / ".tmp" / "peers-venv"
# shared/ beside the checkout (../shared), or beside a worktree's parent (../../shared).
PEER_CONFIGS = next(
    (
        where / "shared" / "reference" / "peer-configs"
        for where in (ROOT.parent, ROOT.parent.parent)
        if (where / "shared" / "reference" / "peer-configs").is_dir()
    ),
    ROOT.parent / "shared" / "reference" / "peer-configs",
)
KEY = "sk-bench"
MS = 1000.0
BOOTSTRAP = 2000  # resamples of the paired store comparison
PEER_PYTHON = "/root/.pyenv/versions/3.12.1/bin/python3.12"
LITELLM_SPEC = "litellm[proxy]>=1.100,<1.110"
OGX_SPEC = "ogx==1.5.0"


# --- servers under test ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ticks(pid: int) -> tuple[int, int]:
    """(parent pid, utime + stime) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def tree_pids(root: int) -> tuple[set[int], int]:
    """`root` and its living descendants, and their CPU ticks (utime + stime)."""
    table: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                table[int(entry.name)] = _ticks(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    wanted, grew = {root}, True
    while grew:
        grew = False
        for pid, (parent, _) in table.items():
            if parent in wanted and pid not in wanted:
                wanted.add(pid)
                grew = True
    return wanted, sum(table.get(pid, (0, 0))[1] for pid in wanted)


def tree_cpu_seconds(root: int) -> float:
    """CPU time of `root` and its living descendants."""
    return tree_pids(root)[1] / os.sysconf("SC_CLK_TCK")


def threads_cpu_seconds(pids: set[int]) -> float:
    """CPU time of the living threads of `pids`, to the nanosecond (schedstat): fine enough to
    take around one request."""
    total = 0
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    port: int
    model: str = MODEL
    proc: subprocess.Popen[bytes] | None = None
    pids: set[int] = field(default_factory=set)  # its processes, once it is ready
    start_seconds: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_ready(self, timeout: float) -> None:
        """Until one non-streamed response comes back whole."""
        began = time.monotonic()
        deadline = began + timeout
        async with httpx.AsyncClient(base_url=self.url, headers=_headers(), timeout=10) as http:
            last = ""
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"exited with {self.proc.returncode}: {self.tail()}")
                try:
                    body = _body(self.model, "ready", False, True)
                    answer = await http.post("/v1/responses", json=body)
                    if answer.status_code == 200 and _text_of(answer.json()) == TEXT:
                        self.start_seconds = time.monotonic() - began
                        self.pids = tree_pids(self.proc.pid)[0]
                        return
                    last = f"HTTP {answer.status_code}: {answer.text[:200]}"
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}"
                await asyncio.sleep(0.25)
        raise RuntimeError(f"not ready in {timeout:.0f} s ({last}); {self.tail()}")

    def tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-3:])[-300:]

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        return tree_cpu_seconds(self.proc.pid)

    def fine_cpu_seconds(self) -> float:
        return threads_cpu_seconds(self.pids)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def _headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


def _body(model: str, tag: str, stream: bool, store: bool) -> dict[str, Any]:
    return {"model": model, "input": f"bench {tag}", "stream": stream, "store": store}


def _text_of(response: dict[str, Any]) -> str:
    return "".join(
        part.get("text", "")
        for item in response.get("output") or []
        if item.get("type") == "message"
        for part in item.get("content") or []
    )


def assistantd_server(label: str, src: Path, tmp: Path, backend: Backend) -> Server:
    data = tmp / label
    data.mkdir()
    port = free_port()
    env = {
        "PYTHONPATH": str(src),
        "ASSISTANTD_DATA_DIR": str(data),
        "ASSISTANTD_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'a.db'}",
        "ASSISTANTD_API_KEYS": f"bench:{KEY}",
        "ASSISTANTD_MODEL_BASE_URL": backend.url,
        "ASSISTANTD_MODEL_API_KEY": "x",
    }
    command = [sys.executable, "-m", "assistantd", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning"]
    return Server(label, command, env, data, tmp / f"{label}.log", port)


def _pip(venv: Path, *args: str, log: Path) -> None:
    with log.open("ab") as out:
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=1800,
        )


def ensure_venv(name: str, install: Callable[[Path, Path], None]) -> Path:
    """The peer's venv under .tmp/peers-venv/NAME, made once (Python >= 3.12)."""
    venv = PEERS_VENV / name
    marker = venv / ".bench-installed"
    if marker.exists():
        return venv
    python = PEER_PYTHON if Path(PEER_PYTHON).exists() else shutil.which("python3.12")
    if python is None:
        raise RuntimeError("no Python >= 3.12 to install it with")
    PEERS_VENV.mkdir(parents=True, exist_ok=True)
    log = PEERS_VENV / f"{name}.log"
    print(f"installing {name} into {venv} (log: {log}) ...", flush=True)
    try:
        if not (venv / "bin" / "python").exists():
            subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
        install(venv, log)
    except (subprocess.SubprocessError, OSError) as exc:
        raise RuntimeError(f"install failed ({exc}); see {log}") from exc
    marker.touch()
    return venv


def _config(name: str, backend: Backend) -> str:
    text = (PEER_CONFIGS / name).read_text()
    return text.replace("BACKEND_PORT", str(backend.port))


def litellm_server(tmp: Path, backend: Backend) -> Server:
    venv = ensure_venv("litellm", lambda venv, log: _pip(venv, LITELLM_SPEC, log=log))
    config = tmp / "litellm.yaml"
    config.write_text(_config("litellm.yaml", backend))
    port = free_port()
    command = [str(venv / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--num_workers", "1"]
    return Server("litellm", command, {"LITELLM_LOG": "ERROR"}, tmp, tmp / "litellm.log", port)


def _install_ogx(venv: Path, log: Path) -> None:
    _pip(venv, OGX_SPEC, "uvloop", "httptools", log=log)
    listed = subprocess.run(
        [str(venv / "bin" / "ogx"), "stack", "list-deps", str(PEER_CONFIGS / "ogx.yaml")],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout.split()
    deps = [dep for dep in listed if dep and not dep.startswith("-")]
    if deps:
        _pip(venv, *deps, log=log)


def _tiktoken_cache() -> Path | None:
    """The `cl100k_base` copy that the litellm wheel ships (OGX downloads it otherwise)."""
    for venv in (PEERS_VENV / "litellm", PEERS_VENV / "ogx"):
        for found in venv.glob("lib/python3*/site-packages/litellm/**/tokenizers"):
            if any(found.iterdir()):
                return found
    return None


def ogx_server(tmp: Path, backend: Backend) -> Server:
    venv = ensure_venv("ogx", _install_ogx)
    where = tmp / "ogx"
    where.mkdir()
    port = free_port()
    config = where / "ogx.yaml"
    config.write_text(_config("ogx.yaml", backend).replace("port: 18553", f"port: {port}"))
    env = {}
    cache = _tiktoken_cache()
    if cache is not None:
        env["TIKTOKEN_CACHE_DIR"] = str(cache)
    command = [str(venv / "bin" / "ogx"), "run", str(config), "--insecure"]
    # OGX names a model by its provider.
    return Server("ogx", command, env, where, tmp / "ogx.log", port, model=f"openai/{MODEL}")


# --- measuring -------------------------------------------------------------------------------


@dataclass
class Cells:
    """One server's samples, in seconds."""

    first: dict[bool, list[float]] = field(default_factory=lambda: {True: [], False: []})
    whole: dict[bool, list[float]] = field(default_factory=lambda: {True: [], False: []})
    # server CPU seconds of each request measured one at a time, by (streamed, store)
    cost: dict[tuple[bool, bool], list[float]] = field(default_factory=dict)
    rate: list[float] = field(default_factory=list)  # responses/s, per load round
    cpu: list[float] = field(default_factory=list)  # CPU seconds per response, per round
    errors: list[str] = field(default_factory=list)


async def first_text(
    http: httpx.AsyncClient, model: str, store: bool, tag: str
) -> tuple[float, str]:
    """Seconds from sending to the first text delta, then the response read to its end."""
    start = time.perf_counter()
    first: float | None = None
    text: list[str] = []
    async with http.stream("POST", "/v1/responses", json=_body(model, tag, True, store)) as answer:
        if answer.status_code != 200:
            await answer.aread()
            raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:200]}")
        async for line in answer.aiter_lines():
            if line.startswith("data:") and '"response.output_text.delta"' in line:
                if first is None:
                    first = time.perf_counter()
                text.append(json.loads(line[5:])["delta"])
    if first is None:
        raise RuntimeError("no response.output_text.delta")
    return first - start, "".join(text)


async def non_streamed(
    http: httpx.AsyncClient, model: str, store: bool, tag: str
) -> tuple[float, str]:
    start = time.perf_counter()
    answer = await http.post("/v1/responses", json=_body(model, tag, False, store))
    elapsed = time.perf_counter() - start
    if answer.status_code != 200:
        raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:200]}")
    return elapsed, _text_of(answer.json())


async def direct_first(backend: httpx.AsyncClient) -> float:
    body = {
        "model": MODEL,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "bench direct"}],
    }
    start = time.perf_counter()
    first: float | None = None
    async with backend.stream("POST", "/chat/completions", json=body) as answer:
        async for line in answer.aiter_lines():
            if first is None and line.startswith("data: {") and '"content": "w' in line:
                first = time.perf_counter() - start
    if first is None:
        raise RuntimeError("no content from the backend")
    return first


async def direct_whole(backend: httpx.AsyncClient) -> float:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "bench direct"}]}
    start = time.perf_counter()
    answer = await backend.post("/chat/completions", json=body)
    answer.raise_for_status()
    return time.perf_counter() - start


class Bench:
    def __init__(self, args: argparse.Namespace, servers: list[Server], backend: Backend) -> None:
        self.args = args
        self.servers = servers
        self.backend = backend
        self.cells = {server.name: Cells() for server in servers}
        self.direct_first: list[float] = []
        self.direct_whole: list[float] = []
        self.deadline = time.monotonic() + args.max_seconds

    def clients(self) -> dict[str, httpx.AsyncClient]:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=2)
        return {
            s.name: httpx.AsyncClient(base_url=s.url, headers=_headers(), timeout=60, limits=limits)
            for s in self.servers
        }

    async def _sample(self, name: str, kind: str, call: Any) -> float | None:
        try:
            seconds, text = await call
        except (httpx.HTTPError, RuntimeError) as exc:
            self.cells[name].errors.append(f"{kind}: {exc}")
            return None
        if text != TEXT:
            self.cells[name].errors.append(f"{kind}: text {text[:60]!r}")
            return None
        return float(seconds)

    async def latencies(self) -> None:
        """One request at a time: per round, the direct calls and then each server's four
        cells, the servers' order rotating from round to round."""
        https = self.clients()
        async with httpx.AsyncClient(base_url=self.backend.url, timeout=30) as backend:
            try:
                for i in range(self.args.warmup + self.args.samples):
                    if time.monotonic() > self.deadline:
                        print("latency rounds cut short by --max-seconds", flush=True)
                        break
                    keep = i >= self.args.warmup
                    first, whole = await direct_first(backend), await direct_whole(backend)
                    if keep:
                        self.direct_first.append(first)
                        self.direct_whole.append(whole)
                    shift = i % len(self.servers)
                    for server in self.servers[shift:] + self.servers[:shift]:
                        await self._round(server, https[server.name], i, keep)
            finally:
                for http in https.values():
                    await http.aclose()

    async def _round(self, server: Server, http: httpx.AsyncClient, i: int, keep: bool) -> None:
        name, model = server.name, server.model
        cells = self.cells[name]
        for store in (i % 2 == 0, i % 2 != 0):
            tag = f"{i} {store}"
            for streamed in (True, False):
                call = (first_text if streamed else non_streamed)(http, model, store, tag)
                cpu = server.fine_cpu_seconds()
                got = await self._sample(name, "streamed" if streamed else "non-streamed", call)
                cpu = server.fine_cpu_seconds() - cpu
                if keep and got is not None:
                    (cells.first if streamed else cells.whole)[store].append(got)
                    cells.cost.setdefault((streamed, store), []).append(cpu)

    async def load(self) -> None:
        """`--load` streamed responses per server from `--clients` clients, in rounds."""
        rounds = max(1, self.args.rounds)
        per_round = max(self.args.clients, self.args.load // rounds)
        for number in range(rounds):
            shift = number % len(self.servers)
            for server in self.servers[shift:] + self.servers[:shift]:
                if time.monotonic() > self.deadline:
                    print("load rounds cut short by --max-seconds", flush=True)
                    return
                await self._load_round(server, per_round, number)

    async def _load_round(self, server: Server, count: int, number: int) -> None:
        cells = self.cells[server.name]
        remaining = list(range(count))
        done = 0
        limits = httpx.Limits(max_connections=self.args.clients, keepalive_expiry=2)

        async def client(http: httpx.AsyncClient) -> None:
            nonlocal done
            while remaining:
                i = remaining.pop()
                call = first_text(http, server.model, i % 2 == 0, f"load {number} {i}")
                got = await self._sample(server.name, "load", call)
                done += got is not None

        async with httpx.AsyncClient(
            base_url=server.url, headers=_headers(), timeout=60, limits=limits
        ) as http:
            warm = [non_streamed(http, server.model, True, "warm") for _ in range(4)]
            await asyncio.gather(*warm)
            cpu = server.cpu_seconds()
            start = time.perf_counter()
            await asyncio.gather(*(client(http) for _ in range(self.args.clients)))
            seconds = time.perf_counter() - start
            cpu = server.cpu_seconds() - cpu
        if done:
            cells.rate.append(done / seconds)
            cells.cpu.append(cpu / done)

    def report(self, skipped: list[str]) -> None:
        def p50(values: list[float]) -> float:
            return statistics.median(values) if values else float("nan")

        first, whole = p50(self.direct_first), p50(self.direct_whole)
        rows: list[tuple[str, Callable[[Cells], str]]] = [
            ("first text, store=true (ms over direct)", lambda c: over(c.first[True], first)),
            ("first text, store=false", lambda c: over(c.first[False], first)),
            ("non-streamed, store=true", lambda c: over(c.whole[True], whole)),
            ("non-streamed, store=false", lambda c: over(c.whole[False], whole)),
            (f"{self.args.clients} clients, responses/s", lambda c: mean(c.rate, 1.0, "/s")),
            ("server CPU per response", lambda c: mean(c.cpu, MS, " ms")),
            ("CPU ms, one at a time: streamed t/f", lambda c: costs(c, True)),
            ("CPU ms, one at a time: non-streamed t/f", lambda c: costs(c, False)),
            ("store=false - true, first text (paired, 95% CI)", lambda c: paired(c.first)),
            ("store=false - true, non-streamed (paired)", lambda c: paired(c.whole)),
            ("samples (latency / load rounds)", lambda c: f"{len(c.first[True])} / {len(c.rate)}"),
            ("errors", lambda c: str(len(c.errors))),
        ]
        names = [s.name for s in self.servers]
        print()
        print(
            f"direct backend p50: first token {first * MS:.2f} ms, non-streamed {whole * MS:.2f} ms"
            f" (load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})"
        )
        print("| measure (p50) | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for label, cell in rows:
            print(f"| {label} | " + " | ".join(cell(self.cells[n]) for n in names) + " |")
        for name in names:
            for error in self.cells[name].errors[:3]:
                print(f"{name} error: {error}")
        for line in skipped:
            print(line)


def over(values: list[float], direct: float) -> str:
    if not values:
        return "-"
    return f"+{(statistics.median(values) - direct) * MS:.2f}"


def paired(by_store: dict[bool, list[float]]) -> str:
    """`store: false` minus `store: true`, per round: the median difference in ms, its 95%
    bootstrap interval, and the rounds where `false` was faster."""
    stored, unstored = by_store[True], by_store[False]
    if not stored or len(stored) != len(unstored):
        return "-"  # a failed sample broke the pairing
    diffs = [(f - t) * MS for t, f in zip(stored, unstored, strict=True)]
    draw = random.Random(0)
    medians = sorted(statistics.median(draw.choices(diffs, k=len(diffs))) for _ in range(BOOTSTRAP))
    low, high = medians[int(BOOTSTRAP * 0.025)], medians[int(BOOTSTRAP * 0.975) - 1]
    faster = sum(d < 0 for d in diffs)
    return (
        f"{statistics.median(diffs):+.2f} ({low:+.2f}..{high:+.2f}), "
        f"faster in {faster}/{len(diffs)}"
    )


def costs(cells: Cells, streamed: bool) -> str:
    """Mean server CPU of one request, with store and without."""
    means = [statistics.mean(cells.cost.get((streamed, store)) or [0.0]) for store in (True, False)]
    return " / ".join(f"{m * MS:.2f}" for m in means)


def mean(values: list[float], unit: float, suffix: str) -> str:
    if not values:
        return "-"
    return f"{statistics.mean(values) * unit:.1f}{suffix}"


# --- main ------------------------------------------------------------------------------------


def plan(args: argparse.Namespace, tmp: Path, backend: Backend) -> tuple[list[Server], list[str]]:
    wanted = args.only.split(",") if args.only else ["assistantd", "litellm", "ogx"]
    servers: list[Server] = []
    skipped: list[str] = []
    makers: dict[str, Callable[[], Server]] = {
        "litellm": lambda: litellm_server(tmp, backend),
        "ogx": lambda: ogx_server(tmp, backend),
    }
    for name in wanted:
        try:
            if name == "assistantd":
                for spec in args.assistantd or [f"assistantd={ROOT / 'src'}"]:
                    label, _, src = spec.partition("=")
                    servers.append(assistantd_server(label, Path(src).resolve(), tmp, backend))
            elif name in makers:
                servers.append(makers[name]())
            else:
                skipped.append(f"{name}: unknown server (assistantd, litellm, ogx)")
        except (RuntimeError, OSError) as exc:
            skipped.append(f"{name}: skipped, {exc}")
    return servers, skipped


async def start_all(servers: list[Server], skipped: list[str]) -> list[Server]:
    for server in servers:
        server.start()
    ready: list[Server] = []
    for server in servers:
        try:
            await server.wait_ready(180)
            print(
                f"{server.name} ready in {server.start_seconds:.1f} s on {server.url}", flush=True
            )
            ready.append(server)
        except RuntimeError as exc:
            skipped.append(f"{server.name}: skipped, did not start: {exc}")
            server.stop()
    return ready


async def main_async(args: argparse.Namespace) -> None:
    backend = Backend(keep_streams=args.backend_keeps_streams)
    with tempfile.TemporaryDirectory(prefix="assistantd-bench-peers-") as name:
        tmp = Path(name)
        servers, skipped = plan(args, tmp, backend)
        ready: list[Server] = []
        try:
            ready = await start_all(servers, skipped)
            if not ready:
                print("no server to measure")
                for line in skipped:
                    print(line)
                return
            bench = Bench(args, ready, backend)
            await bench.latencies()
            await bench.load()
            bench.report(skipped)
        finally:
            for server in servers:
                server.stop()
            backend.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few samples: a rough look")
    parser.add_argument("--only", default="", help="comma list of assistantd, litellm, ogx")
    parser.add_argument(
        "--assistantd",
        action="append",
        metavar="LABEL=SRC",
        help="an assistantd from this src tree, under this label (repeatable)",
    )
    parser.add_argument("--samples", type=int, default=None, help="latency rounds (default 200)")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--load", type=int, default=None, help="load responses per server")
    parser.add_argument("--rounds", type=int, default=None, help="load rounds per server")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.add_argument("--peer-configs", type=Path, default=None)
    parser.add_argument(
        "--backend-keeps-streams",
        action="store_true",
        help="the backend keeps the connection after a stream (chunked) instead of closing it",
    )
    args = parser.parse_args()
    global PEER_CONFIGS
    if args.peer_configs is not None:
        PEER_CONFIGS = args.peer_configs.resolve()
    # A SIGTERM unwinds like ^C, so that the servers this bench started are stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    quick = args.quick
    defaults = {
        "samples": 30 if quick else 200,
        "warmup": 5 if quick else 10,
        "load": 128 if quick else 640,
        "rounds": 2 if quick else 4,
        "max_seconds": 240.0 if quick else 1200.0,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

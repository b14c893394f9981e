"""Fair share between projects (issue 22): project A starts `--backlog` slow background
responses, more than the workers' slots; meanwhile project B sends streamed responses one after
another, and the script prints B's first-token latency (p50/p95) against the bound it should
keep: one model call of A's (`--call-seconds`, the slot B waits for at most) plus B's first
token on an idle server. On SQLite (`serve` with its embedded worker) and on PostgreSQL (`serve`
and two `assistantd worker` processes). Prints a table.

    python bench/fair_share.py                                   # both databases
    python bench/fair_share.py --backends sqlite --backlog 30 --samples 3   # a quick check

The model is the test suite's scripted server (in this process): A's calls answer after
`--call-seconds`, B's at once. Each worker runs `--worker-concurrency` responses at a time. Were
the queue served first come, first served, B's first token would wait for the whole backlog
(backlog / slots x call seconds; the table says how long that would be).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.pg import drop_database, start_postgres, stop_postgres_servers  # noqa: E402
from tests.support.scripted_model import Reply, ScriptedModel  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

KEYS = {"a": "sk-bench-fair-a", "b": "sk-bench-fair-b"}
PG_WORKERS = 2


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def wait_for_log(path: Path, needle: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while needle not in (path.read_text(errors="replace") if path.exists() else ""):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path.name}: no {needle!r} after {timeout} s")
        time.sleep(0.1)


async def first_token(http: httpx.AsyncClient, text: str) -> float:
    """Seconds from B's request to its first output text delta (the stream is read to its end)."""
    started = time.perf_counter()
    first = None
    body = {"model": "gpt-4o", "input": text, "stream": True}
    headers = {"Authorization": f"Bearer {KEYS['b']}"}
    async with http.stream("POST", "/v1/responses", json=body, headers=headers) as answer:
        if answer.status_code != 200:
            raise RuntimeError(f"B's stream: {answer.status_code} {(await answer.aread())!r}")
        async for line in answer.aiter_lines():
            if first is None and line.startswith("data: ") and "output_text.delta" in line:
                first = time.perf_counter() - started
    if first is None:
        raise RuntimeError("B's stream ended without a text delta")
    return first


async def measure(url: str, args: argparse.Namespace) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        idle = [await first_token(http, f"bench-b idle {i}") for i in range(3)]
        a_headers = {"Authorization": f"Bearer {KEYS['a']}"}

        async def start_a(number: int) -> str:
            body = {"model": "gpt-4o", "input": f"bench-a {number}", "background": True}
            answer = await http.post("/v1/responses", json=body, headers=a_headers)
            answer.raise_for_status()
            return str(answer.json()["id"])

        started = time.perf_counter()
        backlog = await asyncio.gather(*[start_a(n) for n in range(args.backlog)])
        created = time.perf_counter() - started
        loaded = [await first_token(http, f"bench-b loaded {i}") for i in range(args.samples)]
        statuses = await asyncio.gather(
            *[http.get(f"/v1/responses/{i}", headers=a_headers) for i in backlog]
        )
        waiting = sum(s.json()["status"] == "queued" for s in statuses)
        await asyncio.gather(
            *[
                http.post(f"/v1/responses/{i}/cancel", headers=a_headers)
                for i, s in zip(backlog, statuses, strict=True)
                if s.json()["status"] in ("queued", "in_progress")
            ]
        )
    return {
        "idle_p50": statistics.median(idle),
        "p50": statistics.median(loaded),
        "p95": pct(loaded, 0.95),
        "max": max(loaded),
        "created": created,
        "waiting": waiting,
    }


def run(backend: str, args: argparse.Namespace) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix=f"fair-{backend}-"))
    model = ScriptedModel().start()
    model.script("bench-a", Reply(text=["slow ", "answer"], delay=args.call_seconds))
    model.script("bench-b", Reply(text=["fast ", "answer"]))
    postgres = backend == "postgres"
    url = start_postgres(ROOT / ".tmp" / "pg") if postgres else f"sqlite+aiosqlite:///{work}/a.db"
    env = {
        "ASSISTANTD_DATABASE_URL": url,
        "ASSISTANTD_DATA_DIR": str(work / "data"),
        "ASSISTANTD_API_KEYS": ",".join(f"{p}:{k}" for p, k in KEYS.items()),
        "ASSISTANTD_MODEL_BASE_URL": model.base_url,
        "ASSISTANTD_EMBEDDED_WORKER": "false" if postgres else "true",
        "ASSISTANTD_WORKER_CONCURRENCY": str(args.worker_concurrency),
        "ASSISTANTD_SHUTDOWN_GRACE_SECONDS": "1",
        "ASSISTANTD_DB_POOL_SIZE": "8",
        "ASSISTANTD_DB_MAX_OVERFLOW": "8",
        "ASSISTANTD_LOG_LEVEL": "WARNING",
    }
    server = LiveServer(env, work / "server.log").start()
    workers: list[LiveServer] = []
    try:
        for number in range(PG_WORKERS if postgres else 0):
            log = work / f"worker{number}.log"
            workers.append(
                LiveServer({**env, "ASSISTANTD_LOG_LEVEL": "INFO"}, log, command="worker")
            )
            workers[-1].start()
            wait_for_log(log, "assistantd.runs.worker worker")
        figures = asyncio.run(measure(server.url, args))
        figures["slots"] = args.worker_concurrency * (len(workers) or 1)
        return figures
    finally:
        for worker in workers:
            worker.stop()
        server.stop()
        model.stop()
        if postgres:
            drop_database(url)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--backlog", type=int, default=200, help="A's background responses")
    parser.add_argument("--samples", type=int, default=20, help="B's streamed responses")
    parser.add_argument("--call-seconds", type=float, default=2.0, help="one model call of A's")
    parser.add_argument("--worker-concurrency", type=int, default=16, help="slots per worker")
    args = parser.parse_args()
    rows = []
    try:
        for backend in args.backends:
            figures = run(backend, args)
            print(f"  {backend}: {json.dumps({k: round(v, 3) for k, v in figures.items()})}")
            rows.append((backend, figures))
    finally:
        stop_postgres_servers()
    print()
    print(
        f"A: {args.backlog} background responses of {args.call_seconds:g} s each; "
        f"B: {args.samples} streamed responses, one after another"
    )
    header = (
        "database",
        "slots",
        "B idle p50",
        "B p50",
        "B p95",
        "bound",
        "within",
        "A still queued",
        "FIFO would wait",
    )
    lines = [header]
    for backend, f in rows:
        bound = args.call_seconds + f["idle_p50"]
        label = backend if backend == "sqlite" else f"postgres, {PG_WORKERS} workers"
        lines.append(
            (
                label,
                f"{f['slots']:.0f}",
                f"{f['idle_p50'] * 1000:.0f} ms",
                f"{f['p50'] * 1000:.0f} ms",
                f"{f['p95'] * 1000:.0f} ms",
                f"{bound * 1000:.0f} ms",
                "yes" if f["p95"] <= bound else "NO",
                f"{f['waiting']:.0f}",
                f"{args.backlog / f['slots'] * args.call_seconds:.0f} s",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


if __name__ == "__main__":
    main()

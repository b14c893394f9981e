"""Scale-out on one machine: several `assistantd serve` processes (no embedded worker) and several
`assistantd worker` processes on loopback, one PostgreSQL, file blobs in S3 (SeaweedFS), as the
README's multi-machine deployment has them. Concurrent clients spread 500 runs (streamed, polled,
and with function calls answered by submit_tool_outputs, streamed or not) across the API
processes, and upload a file through one API process and read it back through another every
fifth run; mid-way one worker and one API process are killed with SIGKILL. Every run must
complete exactly once: one run per thread, one assistant message per run, all `completed`; every
file reads back whole from any API process, and once the orphan sweep has run no object in the
bucket lacks its row.

A client whose API process dies under it does what a client behind a load balancer would: it
goes to another API process, and if it cannot tell whether a create went through, it looks
before creating again.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import openai
import pytest
from openai import OpenAI
from sqlalchemy import create_engine, text

from assistantd.blobs.factory import make_blob_store
from assistantd.blobs.sweep import sweep_orphans
from assistantd.db.engine import make_engine, make_sessionmaker
from assistantd.settings import Settings
from tests.conftest import ROOT, STATIC_KEY, STATIC_PROJECT, is_postgres
from tests.runs.conftest import wait_until
from tests.support.pg import start_postgres
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import LiveServer

T = TypeVar("T")

RUNS = 500
API_PROCESSES = 3
WORKER_PROCESSES = 3
CLIENTS = 16
KILL_AFTER = 200  # runs finished before one worker and one API process are killed
DEADLINE = 600.0  # seconds for the whole scenario (about 100 s on an idle 2-core machine)
KINDS = ("stream", "poll", "tool_stream", "tool_poll")
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}
# Transport failures a client sees when its API process dies.
# (A stream that breaks mid-way raises the transport's own error, httpx2's in this SDK.)
_SDK_TRANSPORT = getattr(openai._base_client, "httpx2", httpx)
GONE = (
    openai.APIConnectionError,
    openai.InternalServerError,
    httpx.TransportError,
    _SDK_TRANSPORT.TransportError,
)


@pytest.fixture(scope="module")
def cluster(
    database_url: str, work_dir: Path, model: ScriptedModel, request: pytest.FixtureRequest
) -> Iterator[Cluster]:
    if not is_postgres(database_url):
        pytest.skip("scale-out needs PostgreSQL (SQLite is one process with its worker inside)")
    s3_env: dict[str, str] = request.getfixturevalue("s3_env")  # SeaweedFS, on PostgreSQL only
    # A PostgreSQL server of its own: six processes' pools need most of its 100 connections.
    scale_database = start_postgres(ROOT / ".tmp" / "pg-scale")
    env = {
        **s3_env,
        "ASSISTANTD_DATA_DIR": str(work_dir / "scale"),
        "ASSISTANTD_DATABASE_URL": scale_database,
        "ASSISTANTD_API_KEYS": f"{STATIC_PROJECT}:{STATIC_KEY}",
        "ASSISTANTD_MODEL_BASE_URL": model.base_url,
        "ASSISTANTD_EMBEDDED_WORKER": "false",
        # A killed worker's runs are taken over once its lease runs out.
        "ASSISTANTD_WORKER_LEASE_SECONDS": "10",
        "ASSISTANTD_REAPER_INTERVAL_SECONDS": "0.5",
        "ASSISTANTD_WORKER_CANCEL_CHECK_SECONDS": "0.25",
        "ASSISTANTD_WORKER_POLL_SECONDS": "0.5",
        "ASSISTANTD_RUN_MAX_ATTEMPTS": "5",
        # PostgreSQL allows 100 connections: 3 x 8 for the APIs, 3 x 18 for the workers, whose
        # pools cover the runs they execute at once (a run waiting for a connection must not
        # hold up its worker's lease renewals).
        "ASSISTANTD_DB_POOL_SIZE": "6",
        "ASSISTANTD_DB_MAX_OVERFLOW": "2",
        "ASSISTANTD_SANDBOX_POOL_SIZE": "0",
        "ASSISTANTD_POLL_AFTER_MS": "50",
        "ASSISTANTD_MIGRATE_ON_START": "false",
    }
    subprocess.run(
        [sys.executable, "-m", "assistantd", "migrate"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )
    apis = [
        LiveServer(env, work_dir / f"scale-api{i}.log").start(wait=False)
        for i in range(API_PROCESSES)
    ]
    worker_env = {
        **env,
        "ASSISTANTD_WORKER_CONCURRENCY": "12",
        "ASSISTANTD_DB_POOL_SIZE": "16",
    }
    workers = [
        LiveServer(worker_env, work_dir / f"scale-worker{i}.log", command="worker").start()
        for i in range(WORKER_PROCESSES)
    ]
    for api in apis:
        api.wait_ready(120)
    for worker in workers:
        wait_until(
            lambda w=worker: w.log_path.read_text(errors="replace"),
            lambda log: "assistantd.runs.worker" in log and " started" in log,
            timeout=120,
            what=f"{worker.log_path.name} to start",
        )
    cluster = Cluster(apis, workers, env["ASSISTANTD_DATABASE_URL"], env)
    try:
        yield cluster
    finally:
        cluster.close()
        for process in [*workers, *apis]:
            process.stop()


@dataclass
class Cluster:
    apis: list[LiveServer]
    workers: list[LiveServer]
    database_url: str
    env: dict[str, str]
    dead: set[int] = field(default_factory=set)  # indexes into apis
    _next: Iterator[int] = field(default_factory=lambda: itertools.count())
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _clients: dict[int, OpenAI] = field(default_factory=dict)

    def client(self, avoid: int | None = None) -> tuple[int, OpenAI]:
        """A client of a live API process, round robin (like a load balancer)."""
        with self._lock:
            while True:
                index = next(self._next) % len(self.apis)
                if index not in self.dead and index != avoid:
                    break
            client = self._clients.get(index)
            if client is None:  # one per API process, shared by the threads (as httpx allows)
                url = f"{self.apis[index].url}/v1"
                client = OpenAI(api_key=STATIC_KEY, base_url=url, max_retries=0, timeout=60)
                self._clients[index] = client
        return index, client

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def kill_api(self, index: int) -> None:
        with self._lock:
            self.dead.add(index)
        self.apis[index].kill()

    def sql(self, query: str, **params: Any) -> list[Any]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(query), params))
        finally:
            engine.dispose()


class Client:
    """One simulated user: its calls fail over to another API process when theirs dies."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.index, self.api = cluster.client()
        self.failovers = 0

    def failover(self) -> None:
        self.index, self.api = self.cluster.client(avoid=self.index)
        self.failovers += 1

    def call(self, action: Callable[[OpenAI], T]) -> T:
        """An idempotent call, retried on another API process if this one is gone."""
        for _ in range(API_PROCESSES * 3):
            try:
                return action(self.api)
            except GONE:
                self.failover()
        raise AssertionError("no API process answered")

    def wait(self, thread_id: str, run_id: str, statuses: set[str]) -> Any:
        deadline = time.monotonic() + 300
        while True:
            run = self.call(lambda api: api.beta.threads.runs.retrieve(run_id, thread_id=thread_id))
            if run.status in statuses:
                return run
            assert run.status in {"queued", "in_progress", "requires_action"}, run
            assert time.monotonic() < deadline, f"run {run_id} stuck in {run.status}"
            time.sleep(0.2)  # as the SDK's polling helpers do (a busy poll loads the APIs)


def answer_for(marker: str) -> str:
    return f"answer {marker}"


def script(model: ScriptedModel, number: int, kind: str) -> str:
    marker = f"scale-{number:04d}-{random.randbytes(3).hex()}"
    chunks = [f"{answer_for(marker)} ", "part ", "two ", "three."]
    if kind.startswith("tool"):
        model.script(marker, Reply(tool_calls=[ToolCall("lookup", json.dumps({"q": marker}))]))
        # The tool output names the marker too; the newest matching rule wins.
        model.script(f"result-{marker}", Reply(text=chunks, chunk_delay=0.01))
    else:
        model.script(marker, Reply(text=chunks, chunk_delay=0.01))
    return marker


def one_run(cluster: Cluster, model: ScriptedModel, number: int, assistants: dict[str, str]) -> str:
    """Create a thread and a run of the given kind; drive it to the end. Returns the thread."""
    kind = KINDS[number % len(KINDS)]
    marker = script(model, number, kind)
    user = Client(cluster)
    thread = user.call(
        lambda api: api.beta.threads.create(messages=[{"role": "user", "content": marker}])
    )
    assistant = assistants["tools" if kind.startswith("tool") else "plain"]
    run_id = start_run(user, thread.id, assistant, streamed=kind == "stream")
    if kind.startswith("tool"):
        run = user.wait(thread.id, run_id, {"requires_action", "completed", "failed"})
        assert run.status == "requires_action", run.last_error
        submit(user, thread.id, run, marker, streamed=kind == "tool_stream")
    run = user.wait(thread.id, run_id, {"completed", "failed", "cancelled", "expired"})
    assert run.status == "completed", (run_id, run.last_error)
    if number % 5 == 0:
        file_round_trip(user, marker)
    return thread.id


def file_round_trip(user: Client, marker: str) -> None:
    """Upload through one API process, read back through another: the blob store is shared."""
    data = (marker.encode() + b"\n") * 200
    file = user.call(
        lambda api: api.files.create(file=(f"{marker}.txt", data), purpose="user_data")
    )
    user.failover()
    assert user.call(lambda api: api.files.content(file.id).read()) == data


def start_run(user: Client, thread_id: str, assistant_id: str, *, streamed: bool) -> str:
    """Create the run once: when the API dies mid-create, look before creating again."""
    for _ in range(API_PROCESSES * 3):
        try:
            if not streamed:
                return user.api.beta.threads.runs.create(
                    thread_id=thread_id, assistant_id=assistant_id
                ).id
            run_id = None
            with user.api.beta.threads.runs.stream(
                thread_id=thread_id, assistant_id=assistant_id
            ) as stream:
                for event in stream:
                    if run_id is None and event.event == "thread.run.created":
                        run_id = event.data.id
            assert run_id is not None
            return run_id
        except GONE:
            user.failover()
            existing = user.call(lambda api: api.beta.threads.runs.list(thread_id).data)
            if existing:
                return existing[0].id
    raise AssertionError("could not create the run")


def submit(user: Client, thread_id: str, run: Any, marker: str, *, streamed: bool) -> None:
    calls = run.required_action.submit_tool_outputs.tool_calls
    outputs = [{"tool_call_id": call.id, "output": f"result-{marker}"} for call in calls]
    for _ in range(API_PROCESSES * 3):
        try:
            if streamed:
                with user.api.beta.threads.runs.submit_tool_outputs_stream(
                    run_id=run.id,
                    thread_id=thread_id,
                    tool_outputs=outputs,  # type: ignore[arg-type]
                ) as stream:
                    stream.until_done()
            else:
                user.api.beta.threads.runs.submit_tool_outputs(
                    run.id,
                    thread_id=thread_id,
                    tool_outputs=outputs,  # type: ignore[arg-type]
                )
            return
        except GONE:
            user.failover()
            current = user.call(
                lambda api: api.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
            )
            if current.status != "requires_action":
                return  # the outputs were taken before the process died
    raise AssertionError("could not submit the tool outputs")


def test_500_runs_complete_exactly_once_through_crashes(
    cluster: Cluster, model: ScriptedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    _, admin = cluster.client()
    assistants = {
        "plain": admin.beta.assistants.create(model="gpt-4o").id,
        "tools": admin.beta.assistants.create(model="gpt-4o", tools=[LOOKUP]).id,  # type: ignore[list-item]
    }
    finished = 0
    lock = threading.Lock()
    killed = threading.Event()

    def job(number: int) -> str:
        nonlocal finished
        thread_id = one_run(cluster, model, number, assistants)
        with lock:
            finished += 1
            if finished == KILL_AFTER:
                killed.set()
        return thread_id

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(job, n) for n in range(RUNS)]
        while not killed.wait(1):
            failed = [f for f in futures if f.done() and f.exception() is not None]
            if failed:
                failed[0].result()  # raises the first client's failure
            assert time.monotonic() - started < DEADLINE, "the first runs did not finish in time"
        cluster.workers[0].kill()  # SIGKILL: its in-flight runs are reaped and run again
        cluster.kill_api(1)  # SIGKILL: its clients' requests and streams break mid-way
        threads = [
            f.result(timeout=max(DEADLINE - (time.monotonic() - started), 1)) for f in futures
        ]
    elapsed = time.monotonic() - started

    assert len(set(threads)) == RUNS
    rows = cluster.sql(
        "SELECT r.thread_id, r.status, r.attempts,"
        " (SELECT count(*) FROM items m WHERE m.run_id = r.id AND m.role = 'assistant'"
        "  AND m.status = 'completed')"
        " FROM runs r WHERE r.thread_id = ANY(:threads)",
        threads=threads,
    )
    by_thread: dict[str, list[Any]] = {}
    for row in rows:
        by_thread.setdefault(row[0], []).append(row)
    assert len(by_thread) == RUNS, "every thread has its run"
    assert all(len(runs) == 1 for runs in by_thread.values()), "one run per thread"
    assert {row[1] for row in rows} == {"completed"}
    # (a worker killed mid-answer leaves the text it had stored, as an incomplete message)
    assert {row[3] for row in rows} == {1}, "one completed assistant message per run"
    stored, swept = assert_no_orphaned_blob(cluster)
    reaped = sum(
        worker.log_path.read_text(errors="replace").count("died; requeued")
        for worker in cluster.workers
    )
    with capsys.disabled():
        sys.stdout.write(
            f"\nscale-out: {RUNS} runs, {API_PROCESSES} API + {WORKER_PROCESSES} worker "
            f"processes, {CLIENTS} clients, {elapsed:.1f} s ({RUNS / elapsed:.1f} runs/s); "
            f"{reaped} runs taken over from a worker presumed dead; {stored} blobs in S3, "
            f"{swept} orphans swept\n"
        )


def assert_no_orphaned_blob(cluster: Cluster) -> tuple[int, int]:
    """What the killed API process left between a blob and its row goes with the sweep (run
    here at once, with everything quiet, rather than after the workers' grace age); then every
    object in the bucket is a file's or an upload part's."""
    env = cluster.env
    settings = Settings(
        database_url=env["ASSISTANTD_DATABASE_URL"],
        blob_url=env["ASSISTANTD_BLOB_URL"],
        aws_endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_region=env["AWS_REGION"],
    )

    async def sweep_and_list() -> tuple[int, set[str]]:
        engine = make_engine(settings)
        blobs = make_blob_store(settings)
        try:
            swept = await sweep_orphans(
                make_sessionmaker(engine, write=True), blobs, grace_seconds=0.001
            )
            return swept.orphans, {
                key async for page in blobs.stale_keys(older_than=time.time() + 60) for key in page
            }
        finally:
            await blobs.aclose()
            await engine.dispose()

    with pytest.MonkeyPatch.context() as patch:  # botocore's credential chain reads these
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            patch.setenv(name, env[name])
        swept, stored = asyncio.run(sweep_and_list())
    referenced = {
        key
        for (key,) in cluster.sql(
            "SELECT blob_key FROM files UNION SELECT blob_key FROM upload_parts"
        )
    }
    assert len(stored) >= RUNS // 5
    assert stored <= referenced, f"orphaned blobs: {sorted(stored - referenced)[:5]}"
    return len(stored), swept

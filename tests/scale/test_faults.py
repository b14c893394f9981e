"""Fault injection on PostgreSQL: 300 runs (streamed, polled, with function calls, with the code
interpreter) while workers and an API process are killed with SIGKILL at random moments, every
database connection is dropped, and PostgreSQL itself restarts once.

Afterwards every run is terminal, none is duplicated, no answer was written twice, every stream a
client re-attached to (`GET .../events?after=N`) has every event of the run's log, in order, and
no file's blob is orphaned.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI
from sqlalchemy import create_engine, text

from tests.conftest import ROOT, STATIC_KEY, STATIC_PROJECT, is_postgres
from tests.runs.conftest import wait_until
from tests.sandbox.conftest import docker, remove_containers_of
from tests.scale.test_scale_out import GONE, LOOKUP, Cluster
from tests.support.pg import start_postgres
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import LiveServer

RUNS = 300
CLIENTS = 12
KINDS = ("stream", "poll", "tool_poll", "stream", "poll", "tool_stream")
CODE_EVERY = 15  # one run in 15 uses the code interpreter
DEADLINE = 900.0
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}
# Faults, by the number of runs finished when they strike.
FAULTS = {40: "kill_worker", 80: "kill_api", 120: "drop_connections", 170: "restart_postgres"}
FAULTS[230] = "kill_worker"
PG_ROOT = ROOT / ".tmp" / "pg-faults"

__all__ = ["docker"]  # the fixture that requires the Docker engine and the sandbox image


@pytest.fixture(scope="module")
def faulty(
    database_url: str, work_dir: Path, model: ScriptedModel, docker: None
) -> Iterator[Cluster]:
    if not is_postgres(database_url):
        pytest.skip("fault injection across processes needs PostgreSQL")
    url = start_postgres(PG_ROOT)
    env = {
        "ASSISTANTD_DATA_DIR": str(work_dir / "faults"),
        "ASSISTANTD_DATABASE_URL": url,
        "ASSISTANTD_API_KEYS": f"{STATIC_PROJECT}:{STATIC_KEY}",
        "ASSISTANTD_MODEL_BASE_URL": model.base_url,
        "ASSISTANTD_EMBEDDED_WORKER": "false",
        "ASSISTANTD_WORKER_LEASE_SECONDS": "6",
        "ASSISTANTD_REAPER_INTERVAL_SECONDS": "0.5",
        "ASSISTANTD_WORKER_CANCEL_CHECK_SECONDS": "0.25",
        "ASSISTANTD_WORKER_POLL_SECONDS": "0.5",
        "ASSISTANTD_RUN_MAX_ATTEMPTS": "8",
        "ASSISTANTD_DB_POOL_SIZE": "6",
        "ASSISTANTD_DB_MAX_OVERFLOW": "2",
        "ASSISTANTD_SANDBOX_POOL_SIZE": "0",
        "ASSISTANTD_MIGRATE_ON_START": "false",
    }
    subprocess.run(
        [sys.executable, "-m", "assistantd", "migrate"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )
    apis = [LiveServer(env, work_dir / f"faults-api{i}.log").start(wait=False) for i in range(2)]
    worker_env = {**env, "ASSISTANTD_WORKER_CONCURRENCY": "12", "ASSISTANTD_DB_POOL_SIZE": "16"}
    cluster = Cluster(apis, [], url, env)
    cluster.worker_env = worker_env  # type: ignore[attr-defined]
    for api in apis:
        api.wait_ready(120)
    for _ in range(3):
        start_worker(cluster, work_dir)
    try:
        yield cluster
    finally:
        cluster.close()
        for process in [*cluster.workers, *apis]:
            process.stop()
        # Killed workers leave their sandboxes behind by design (the installation sweeps its own
        # orphans at its next start, which never comes for this one): the test removes them.
        processes = [*cluster.workers, *cluster.apis, *apis]
        remove_containers_of({process.proc.pid for process in processes if process.proc})


def start_worker(cluster: Cluster, work_dir: Path) -> LiveServer:
    log = work_dir / f"faults-worker{len(cluster.workers)}.log"
    worker = LiveServer(cluster.worker_env, log, command="worker").start()  # type: ignore[attr-defined]
    wait_until(
        lambda: log.read_text(errors="replace"),
        lambda text: "assistantd.runs.worker" in text and " started" in text,
        timeout=120,
        what=f"{log.name} to start",
    )
    cluster.workers.append(worker)
    return worker


def pg_admin(sql: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        pgserver.get_server(str(PG_ROOT), cleanup_mode=None).psql(sql)


def restart_postgres() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(str(PG_ROOT), cleanup_mode=None)
        pgserver.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=PG_ROOT, user=server.system_user)


class Faults:
    def __init__(self, cluster: Cluster, work_dir: Path) -> None:
        self.cluster = cluster
        self.work_dir = work_dir
        self.done: list[str] = []

    def strike(self, fault: str) -> None:
        # a random moment within the next second, so it lands mid-request or mid-answer
        time.sleep(random.uniform(0, 1))
        if fault == "kill_worker":
            live = [w for w in self.cluster.workers if w.proc and w.proc.poll() is None]
            random.choice(live).kill()
            start_worker(self.cluster, self.work_dir)  # keep the capacity up
        elif fault == "kill_api":
            self.cluster.kill_api(1)
        elif fault == "drop_connections":
            pg_admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND datname LIKE 'assistantd_%';"
            )
        elif fault == "restart_postgres":
            restart_postgres()
        self.done.append(fault)


class User:
    """One client: calls go to a live API process, retried (on another one, when there is
    another) while the one it used is gone or the database is down (a 500 during a restart)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.index, self.api = cluster.client()

    def failover(self, attempt: int) -> None:
        live = len(self.cluster.apis) - len(self.cluster.dead)
        self.index, self.api = self.cluster.client(avoid=self.index if live > 1 else None)
        time.sleep(min(0.1 * attempt, 2))

    def call(self, action: Callable[[OpenAI], Any]) -> Any:
        for attempt in range(60):
            try:
                return action(self.api)
            except GONE:
                self.failover(attempt)
        raise AssertionError("no API process answered")

    def http(self) -> tuple[str, dict[str, str]]:
        return str(self.api.base_url), {"Authorization": f"Bearer {STATIC_KEY}"}


def stream_events(
    user: User,
    thread_id: str,
    body: dict[str, Any],
    *,
    run_id: str | None = None,
    seen: list[int] | None = None,
) -> tuple[str, list[int]]:
    """Create a streamed run (or, given `run_id`, re-attach to one after the `seen` events) and
    read its events up to where its stream ends, re-attaching after the last one seen whenever
    the connection breaks. Returns the run id and every sequence number seen."""
    seen = [] if seen is None else seen
    for attempt in range(60):
        base, headers = user.http()
        if run_id is None:
            request = ("POST", f"{base}threads/{thread_id}/runs", {**body, "stream": True})
        else:
            after = seen[-1] if seen else 0
            request = ("GET", f"{base}threads/{thread_id}/runs/{run_id}/events?after={after}", None)
        try:
            with httpx.stream(
                request[0], request[1], json=request[2], headers=headers, timeout=60
            ) as answer:
                if answer.status_code >= 500:
                    raise httpx.RemoteProtocolError("server error")
                answer.raise_for_status()
                event = ""
                for line in answer.iter_lines():
                    if line.startswith("id: "):
                        seen.append(int(line[4:]))
                    elif line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == "thread.run.created":
                        run_id = json.loads(line[6:])["id"]
                    elif line == "data: [DONE]":
                        assert run_id is not None
                        return run_id, seen
        except (httpx.HTTPError, *GONE):
            pass
        if run_id is None:  # the create may have gone through: look before creating again
            runs = user.call(lambda api: api.beta.threads.runs.list(thread_id).data)
            if runs:
                run_id = runs[0].id
        user.failover(attempt)
    raise AssertionError(f"could not stream the run of {thread_id}")


def wait_terminal(user: User, thread_id: str, run_id: str, statuses: set[str]) -> Any:
    deadline = time.monotonic() + 300
    while True:
        run = user.call(lambda api: api.beta.threads.runs.retrieve(run_id, thread_id=thread_id))
        if run.status in statuses:
            return run
        assert time.monotonic() < deadline, f"run {run_id} stuck in {run.status}"
        time.sleep(0.2)


def one_run(
    cluster: Cluster, model: ScriptedModel, number: int, assistants: dict[str, str]
) -> tuple[str, str, list[int] | None]:
    kind = "code" if number % CODE_EVERY == 0 else KINDS[number % len(KINDS)]
    marker = f"fault-{number:04d}-{random.randbytes(3).hex()}"
    chunks = [f"answer {marker} ", "part ", "two."]
    if kind.startswith("tool"):
        model.script(marker, Reply(tool_calls=[ToolCall("lookup", json.dumps({"q": marker}))]))
        model.script(f"result-{marker}", Reply(text=chunks, chunk_delay=0.02))
    elif kind == "code":
        code = f"open('/mnt/data/{marker}.txt', 'w').write('{marker}')\nprint('{marker}')"
        model.script(
            marker,
            Reply(tool_calls=[ToolCall("python", json.dumps({"code": code}))]),
            Reply(text=f"Saved sandbox:/mnt/data/{marker}.txt"),
        )
    else:
        model.script(marker, Reply(text=chunks, chunk_delay=0.02))
    user = User(cluster)
    thread = user.call(
        lambda api: api.beta.threads.create(messages=[{"role": "user", "content": marker}])
    )
    assistant = assistants[
        "tools" if kind.startswith("tool") else kind if kind == "code" else "plain"
    ]
    seen: list[int] | None = None
    if kind in ("stream", "tool_stream"):
        run_id, seen = stream_events(user, thread.id, {"assistant_id": assistant})
    else:
        run_id = create_once(user, thread.id, assistant)
    run = wait_terminal(user, thread.id, run_id, {*TERMINAL, "requires_action"})
    if run.status == "requires_action":
        calls = run.required_action.submit_tool_outputs.tool_calls
        outputs = [{"tool_call_id": c.id, "output": f"result-{marker}"} for c in calls]
        submit_once(user, thread.id, run_id, outputs)
        run = wait_terminal(user, thread.id, run_id, TERMINAL)
    if kind == "tool_stream":
        # a streaming client follows the run on after it answered the calls
        stream_events(user, thread.id, {}, run_id=run_id, seen=seen)
    return thread.id, run_id, seen


def create_once(user: User, thread_id: str, assistant_id: str) -> str:
    for _ in range(60):
        try:
            return str(
                user.api.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id).id
            )
        except GONE:
            user.failover(3)
            runs = user.call(lambda api: api.beta.threads.runs.list(thread_id).data)
            if runs:
                return str(runs[0].id)
    raise AssertionError("could not create the run")


def submit_once(user: User, thread_id: str, run_id: str, outputs: list[dict[str, str]]) -> None:
    for _ in range(60):
        try:
            user.api.beta.threads.runs.submit_tool_outputs(
                run_id,
                thread_id=thread_id,
                tool_outputs=outputs,  # type: ignore[arg-type]
            )
            return
        except GONE:
            user.failover(3)
            run = user.call(lambda api: api.beta.threads.runs.retrieve(run_id, thread_id=thread_id))
            if run.status != "requires_action":
                return
    raise AssertionError("could not submit the tool outputs")


def test_300_runs_through_kills_dropped_connections_and_a_database_restart(
    faulty: Cluster, model: ScriptedModel, work_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    _, admin = faulty.client()
    assistants = {
        "plain": admin.beta.assistants.create(model="gpt-4o").id,
        "tools": admin.beta.assistants.create(model="gpt-4o", tools=[LOOKUP]).id,  # type: ignore[list-item]
        "code": admin.beta.assistants.create(
            model="gpt-4o", tools=[{"type": "code_interpreter"}]
        ).id,
    }
    faults = Faults(faulty, work_dir)
    finished = 0
    lock = threading.Lock()
    strikes: list[threading.Thread] = []

    def job(number: int) -> tuple[str, str, list[int] | None]:
        nonlocal finished
        outcome = one_run(faulty, model, number, assistants)
        with lock:
            finished += 1
            fault = FAULTS.get(finished)
            if fault is not None:
                strike = threading.Thread(target=faults.strike, args=(fault,))
                strike.start()
                strikes.append(strike)
        return outcome

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(job, n) for n in range(RUNS)]
        outcomes = [
            f.result(timeout=max(DEADLINE - (time.monotonic() - started), 1)) for f in futures
        ]
    for strike in strikes:
        strike.join(60)
    elapsed = time.monotonic() - started
    assert sorted(faults.done) == sorted(FAULTS.values())

    threads = [thread_id for thread_id, _, _ in outcomes]
    assert len(set(threads)) == RUNS
    engine = create_engine(faulty.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT r.thread_id, r.id, r.status,"
                    " (SELECT count(*) FROM items m WHERE m.run_id = r.id"
                    "  AND m.role = 'assistant' AND m.status = 'completed')"
                    " FROM runs r WHERE r.thread_id = ANY(:threads)"
                ),
                {"threads": threads},
            ).all()
            logs = {
                run_id: [
                    seq
                    for (seq,) in conn.execute(
                        text("SELECT seq FROM run_events WHERE run_id = :r ORDER BY seq"),
                        {"r": run_id},
                    )
                ]
                for _, run_id, seen in outcomes
                if seen is not None
            }
            blobs = {key for (key,) in conn.execute(text("SELECT blob_key FROM files"))}
    finally:
        engine.dispose()
    by_thread: dict[str, list[Any]] = {}
    for row in rows:
        by_thread.setdefault(row[0], []).append(row)
    assert all(len(runs) == 1 for runs in by_thread.values()), "one run per thread"
    statuses = {row[2] for row in rows}
    assert statuses <= TERMINAL, statuses
    for _, run_id, status, answers in rows:
        assert answers <= 1, f"run {run_id} answered twice"
        if status == "completed":
            assert answers == 1, f"run {run_id} completed without its answer"
    for _, run_id, seen in outcomes:
        if seen is not None:
            assert seen == logs[run_id], f"the stream of {run_id} missed or repeated events"
    blob_dir = work_dir / "faults" / "files"
    stored = {p.name for p in blob_dir.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert stored <= blobs, f"orphaned blobs: {sorted(stored - blobs)[:5]}"
    completed = sum(1 for row in rows if row[2] == "completed")
    with capsys.disabled():
        sys.stdout.write(
            f"\nfaults: {RUNS} runs in {elapsed:.1f} s through {', '.join(faults.done)}; "
            f"{completed} completed, statuses {sorted(statuses)}\n"
        )

"""Helpers for the run contract tests: unique model markers, polling with a deadline, and
servers with tuned settings (their own database, so no other worker takes their runs)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest
from openai import OpenAI
from openai.types.beta import Assistant
from openai.types.beta.threads import Run
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import is_postgres
from tests.support.scripted_model import ScriptedModel
from tests.support.server import LiveServer

T = TypeVar("T")

TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}
RUN_KEYS = {
    "id",
    "object",
    "created_at",
    "thread_id",
    "assistant_id",
    "status",
    "required_action",
    "last_error",
    "expires_at",
    "started_at",
    "cancelled_at",
    "failed_at",
    "completed_at",
    "incomplete_details",
    "model",
    "instructions",
    "tools",
    "metadata",
    "usage",
    "temperature",
    "top_p",
    "max_prompt_tokens",
    "max_completion_tokens",
    "truncation_strategy",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
}
STEP_KEYS = {
    "id",
    "object",
    "created_at",
    "assistant_id",
    "thread_id",
    "run_id",
    "type",
    "status",
    "step_details",
    "last_error",
    "expired_at",
    "cancelled_at",
    "failed_at",
    "completed_at",
    "metadata",
    "usage",
}
# A valid 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf000000030101001c2e9d5f0000000049454e44ae426082"
)
TUNED_KEY = "sk-tuned"


def function_tool(name: str, description: str | None = None) -> dict[str, Any]:
    fn: dict[str, Any] = {
        "name": name,
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    if description:
        fn["description"] = description
    return {"type": "function", "function": fn}


def sent_keys(obj: Any) -> set[str]:
    """The keys the server actually put in the JSON (nulls included)."""
    return set(obj.model_dump(exclude_unset=True))


def wait_until(
    probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float = 15.0, what: str = ""
) -> T:
    """Call `probe` until `done(value)`; the last value, or AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: {value!r}")
        time.sleep(0.02)


def wait_run(
    client: OpenAI, thread_id: str, run_id: str, statuses: set[str], *, timeout: float = 15.0
) -> Run:
    return wait_until(
        lambda: client.beta.threads.runs.retrieve(run_id, thread_id=thread_id),
        lambda run: run.status in statuses,
        timeout=timeout,
        what=f"run {run_id} to reach {sorted(statuses)}",
    )


@pytest.fixture
def marker() -> str:
    """A token unique to this test: put it in a message, script the model for it."""
    return f"mk-{secrets.token_hex(6)}"


@pytest.fixture
def assistant(client: OpenAI) -> Assistant:
    return client.beta.assistants.create(
        model="gpt-4o", instructions="You are terse.", tools=[function_tool("lookup")]
    )


# --- servers with their own settings and database -------------------------------------------


def fresh_database(database_url: str, work_dir: Path) -> str:
    """A new, empty database next to the suite's one (same PostgreSQL server, or a new file)."""
    name = f"tuned_{secrets.token_hex(4)}"
    if not is_postgres(database_url):
        return f"sqlite+aiosqlite:///{work_dir / (name + '.db')}"
    url = make_url(database_url)
    engine = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    finally:
        engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


class Tuned:
    """A server (and, on PostgreSQL, its workers) with settings of its own, and a client."""

    def __init__(self, api: LiveServer, env: dict[str, str], work_dir: Path, workers: int) -> None:
        self.api = api
        self.env = env
        self.work_dir = work_dir
        self.database_url = env["ASSISTANTD_DATABASE_URL"]
        self.workers: list[LiveServer] = []
        for _ in range(workers):
            self.add_worker()
        self.client = OpenAI(api_key=TUNED_KEY, base_url=f"{api.url}/v1", max_retries=0)

    def add_worker(self) -> LiveServer:
        """Start one more standalone `assistantd worker` on this server's database."""
        log = self.work_dir / f"{self.api.log_path.stem}-worker{len(self.workers)}.log"
        worker = LiveServer(self.env, log, command="worker").start()
        self.workers.append(worker)
        # ready once it logs "worker <id> started" (after migrations and tool set-up)
        wait_until(
            lambda: log.read_text(errors="replace") if log.exists() else "",
            lambda text: " started" in text and "assistantd.runs.worker" in text,
            timeout=90,
            what=f"worker {log.name} to start",
        )
        return worker

    def sql(self, query: str, **params: Any) -> list[Any]:
        engine = create_engine(self.database_url.replace("sqlite+aiosqlite", "sqlite"))
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(query), params))
        finally:
            engine.dispose()

    def stop(self) -> None:
        self.client.close()
        for worker in self.workers:
            worker.stop()
        self.api.stop()


@pytest.fixture(scope="module")
def tuned_server(
    server_env: dict[str, str], work_dir: Path, model: ScriptedModel
) -> Iterator[Callable[..., Tuned]]:
    """Start servers with `ASSISTANTD_*` overrides: `tuned_server({...}, workers=N)`.

    Each gets a fresh database, so the suite's worker never takes its runs. On SQLite the
    server executes runs itself; on PostgreSQL `workers` standalone workers do (default 1).
    """
    started: list[Tuned] = []

    def start(env: Mapping[str, str], *, workers: int = 1, embedded: bool = False) -> Tuned:
        tag = secrets.token_hex(3)
        database_url = fresh_database(server_env["ASSISTANTD_DATABASE_URL"], work_dir)
        full = {
            **server_env,
            "ASSISTANTD_DATABASE_URL": database_url,
            "ASSISTANTD_DATA_DIR": str(work_dir / f"data-{tag}"),
            "ASSISTANTD_API_KEYS": f"tuned:{TUNED_KEY}",
            # small pools: the suite's PostgreSQL serves every other server too
            "ASSISTANTD_DB_POOL_SIZE": "4",
            "ASSISTANTD_DB_MAX_OVERFLOW": "8",
            **env,
        }
        postgres = is_postgres(database_url)
        if embedded or not postgres:
            full["ASSISTANTD_EMBEDDED_WORKER"] = "true"
            workers = 0
        else:
            full["ASSISTANTD_EMBEDDED_WORKER"] = "false"
        api = LiveServer(full, work_dir / f"tuned-{tag}.log").start()
        tuned = Tuned(api, full, work_dir, workers)
        started.append(tuned)
        return tuned

    yield start
    for tuned in started:
        tuned.stop()

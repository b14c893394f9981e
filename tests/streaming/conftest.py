"""Fixtures for streaming tests: both official clients, a raw HTTP client, unique markers, and
a server with a short model read timeout (for failures in the middle of a stream)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from openai import AzureOpenAI, OpenAI
from openai.types.beta import Assistant
from openai.types.beta.threads import Run
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import is_postgres
from tests.support.scripted_model import ScriptedModel
from tests.support.server import LiveServer

T = TypeVar("T")
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete", "requires_action"}


@pytest.fixture(params=["openai", "azure"])
def sdk(request: pytest.FixtureRequest) -> OpenAI | AzureOpenAI:
    """The OpenAI client, then the AzureOpenAI client (same project)."""
    name = "client" if request.param == "openai" else "azure_client"
    sdk_client: OpenAI | AzureOpenAI = request.getfixturevalue(name)
    return sdk_client


@pytest.fixture
def http(server: LiveServer, api_key: str) -> Iterator[httpx.Client]:
    """Raw HTTP on `/v1`, in the project of `client`."""
    headers = {"Authorization": f"Bearer {api_key}", "OpenAI-Beta": "assistants=v2"}
    with httpx.Client(base_url=f"{server.url}/v1", headers=headers, timeout=30) as c:
        yield c


@pytest.fixture
def marker() -> str:
    """A token unique to this test: put it in a message, script the model for it."""
    return f"sse-{secrets.token_hex(6)}"


@pytest.fixture
def assistant(client: OpenAI) -> Assistant:
    from tests.streaming.support import WEATHER_TOOL

    return client.beta.assistants.create(model="gpt-4o", tools=[WEATHER_TOOL])


def wait_until(
    probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float = 15.0, what: str = ""
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: {value!r}")
        time.sleep(0.02)


def wait_run(
    client: OpenAI | AzureOpenAI,
    thread_id: str,
    run_id: str,
    statuses: set[str] = TERMINAL,
    *,
    timeout: float = 15.0,
) -> Run:
    return wait_until(
        lambda: client.beta.threads.runs.retrieve(run_id, thread_id=thread_id),
        lambda run: run.status in statuses,
        timeout=timeout,
        what=f"run {run_id} to reach {sorted(statuses)}",
    )


# --- a server whose model calls time out fast ------------------------------------------------

IMPATIENT_KEY = "sk-impatient"


def _fresh_database(database_url: str, work_dir: Path) -> str:
    name = f"streaming_{secrets.token_hex(4)}"
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


@pytest.fixture(scope="module")
def impatient(server_env: dict[str, str], work_dir: Path, model: ScriptedModel) -> Iterator[OpenAI]:
    """A client of a server (own database; on PostgreSQL a standalone worker) whose model calls
    fail after 3 s without a chunk (long enough for a first token on a loaded machine), so a
    model that stops mid-answer fails the run."""
    tag = secrets.token_hex(3)
    env: dict[str, Any] = {
        **server_env,
        "ASSISTANTD_DATABASE_URL": _fresh_database(server_env["ASSISTANTD_DATABASE_URL"], work_dir),
        "ASSISTANTD_DATA_DIR": str(work_dir / f"impatient-{tag}"),
        "ASSISTANTD_API_KEYS": f"impatient:{IMPATIENT_KEY}",
        "ASSISTANTD_MODEL_READ_TIMEOUT_SECONDS": "3",
        "ASSISTANTD_MODEL_MAX_RETRIES": "0",
    }
    processes = []
    if is_postgres(env["ASSISTANTD_DATABASE_URL"]):
        env["ASSISTANTD_EMBEDDED_WORKER"] = "false"
        processes.append(LiveServer(env, work_dir / f"impatient-{tag}.log").start())
        processes.append(
            LiveServer(env, work_dir / f"impatient-{tag}-worker.log", command="worker").start()
        )
    else:
        processes.append(LiveServer(env, work_dir / f"impatient-{tag}.log").start())
    with OpenAI(api_key=IMPATIENT_KEY, base_url=f"{processes[0].url}/v1", max_retries=0) as c:
        yield c
    for process in reversed(processes):
        process.stop()

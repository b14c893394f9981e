"""Fixtures for the code interpreter tests: a real Docker engine, and servers tuned for it.

Tests that run code need Docker and the sandbox image (`assistantd sandbox build`). Without them
they are skipped, unless `ASSISTANTD_REQUIRE_DOCKER=1` (CI), which turns that into a failure.
Each sandbox server has its own database, so the suite's own worker never takes its runs.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from openai import AzureOpenAI, OpenAI
from openai.types.beta import Assistant
from openai.types.beta.threads import Run
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from assistantd.sandbox.containers import LABEL, OWNER_LABEL
from assistantd.sandbox.docker import Endpoint
from assistantd.settings import Settings
from tests.conftest import AZURE_API_VERSION, is_postgres
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import LiveServer

T = TypeVar("T")

SANDBOX_KEY = "sk-sandbox"
# The sandboxes of this test session run under gVisor (CI runs the sandbox tests under both).
GVISOR = os.environ.get("ASSISTANTD_SANDBOX_RUNTIME") == "runsc"
FUNCTION = "python"
# Small limits, so that hostile code hits them quickly.
SANDBOX_ENV = {
    "ASSISTANTD_SANDBOX_POOL_SIZE": "1",
    "ASSISTANTD_SANDBOX_EXEC_TIMEOUT_SECONDS": "30",
    "ASSISTANTD_SANDBOX_MEMORY_MB": "512",
    "ASSISTANTD_SANDBOX_PIDS_LIMIT": "64",
    "ASSISTANTD_SANDBOX_DATA_MB": "32",
    "ASSISTANTD_SANDBOX_MAX_FILE_MB": "8",
    "ASSISTANTD_SANDBOX_MAX_OUTPUT_CHARS": "5000",
}


def docker_problem() -> str | None:
    """Why code cannot run here (no engine, no image), or None."""
    settings = Settings()
    endpoint = Endpoint.parse(settings.sandbox_docker_host)
    if endpoint.socket_path is not None:
        transport = httpx.HTTPTransport(uds=endpoint.socket_path)
        base = "http://docker"
    else:
        transport = httpx.HTTPTransport()
        base = f"http://{endpoint.host}:{endpoint.port}"
    try:
        with httpx.Client(transport=transport, base_url=base, timeout=5) as http:
            http.get("/_ping").raise_for_status()
            image = http.get(f"/images/{settings.sandbox_image}/json")
    except (httpx.HTTPError, OSError) as exc:
        return f"no Docker engine at {settings.sandbox_docker_host}: {exc}"
    if image.status_code != 200:
        return f"no sandbox image {settings.sandbox_image} (run `assistantd sandbox build`)"
    return None


@pytest.fixture(scope="session")
def docker() -> None:
    problem = docker_problem()
    if problem is None:
        return
    if os.environ.get("ASSISTANTD_REQUIRE_DOCKER") == "1":
        pytest.fail(f"ASSISTANTD_REQUIRE_DOCKER=1 but {problem}")
    pytest.skip(problem)


def fresh_database(database_url: str, work_dir: Path) -> str:
    """A new, empty database next to the suite's one (same PostgreSQL server, or a new file)."""
    name = f"sandbox_{secrets.token_hex(4)}"
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


class SandboxServer:
    """A server (on PostgreSQL: API plus one worker) with sandbox settings of its own."""

    def __init__(self, env: dict[str, str], work_dir: Path, tag: str) -> None:
        self.env = env
        self.project = env["ASSISTANTD_API_KEYS"].split(":", 1)[0]
        self.work_dir = work_dir
        self.tag = tag
        self.pids: set[int] = set()
        self.api = self._started(LiveServer(env, work_dir / f"sandbox-{tag}.log"))
        self.worker: LiveServer | None = None
        if env["ASSISTANTD_EMBEDDED_WORKER"] == "false":
            self.worker = self._started(
                LiveServer(env, work_dir / f"sandbox-{tag}-worker.log", command="worker")
            )
        self.client = OpenAI(api_key=SANDBOX_KEY, base_url=f"{self.api.url}/v1", max_retries=0)
        self.azure = AzureOpenAI(
            api_key=SANDBOX_KEY,
            api_version=AZURE_API_VERSION,
            azure_endpoint=self.api.url,
            max_retries=0,
        )

    def _started(self, server: LiveServer) -> LiveServer:
        server.start()
        assert server.proc is not None
        self.pids.add(server.proc.pid)
        return server

    def restart(self, *, crash: bool = False) -> None:
        """Stop (or, `crash`, SIGKILL) and start the process that executes runs (sessions must
        survive it)."""
        if self.worker is not None:
            self.worker.kill() if crash else self.worker.stop()
            self.worker = self._started(
                LiveServer(self.env, self.worker.log_path, command="worker")
            )
            return
        self.api.kill() if crash else self.api.stop()
        self.api = self._started(LiveServer(self.env, self.api.log_path))
        self.client.close()
        self.azure.close()
        self.client = OpenAI(api_key=SANDBOX_KEY, base_url=f"{self.api.url}/v1", max_retries=0)
        self.azure = AzureOpenAI(
            api_key=SANDBOX_KEY,
            api_version=AZURE_API_VERSION,
            azure_endpoint=self.api.url,
            max_retries=0,
        )

    def stop(self) -> None:
        self.client.close()
        self.azure.close()
        if self.worker is not None:
            self.worker.stop()
        self.api.stop()
        remove_containers_of(self.pids)


@pytest.fixture(scope="module")
def sandbox_servers(
    server_env: dict[str, str], work_dir: Path, model: ScriptedModel
) -> Iterator[Callable[..., SandboxServer]]:
    """Start servers with sandbox settings: `sandbox_servers({"ASSISTANTD_...": ...})`."""
    started: list[SandboxServer] = []

    def start(overrides: Mapping[str, str] | None = None) -> SandboxServer:
        tag = secrets.token_hex(3)
        database_url = fresh_database(server_env["ASSISTANTD_DATABASE_URL"], work_dir)
        env = {
            **server_env,
            **SANDBOX_ENV,
            "ASSISTANTD_DATABASE_URL": database_url,
            "ASSISTANTD_DATA_DIR": str(work_dir / f"sandbox-data-{tag}"),
            "ASSISTANTD_API_KEYS": f"sandbox-{tag}:{SANDBOX_KEY}",
            "ASSISTANTD_EMBEDDED_WORKER": "false" if is_postgres(database_url) else "true",
            **(overrides or {}),
        }
        server = SandboxServer(env, work_dir, tag)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def sandbox(docker: None, sandbox_servers: Callable[..., SandboxServer]) -> SandboxServer:
    """The module's sandbox server."""
    return sandbox_servers()


@pytest.fixture
def client(sandbox: SandboxServer) -> OpenAI:
    return sandbox.client


@pytest.fixture
def marker() -> str:
    return f"ci-{secrets.token_hex(6)}"


@pytest.fixture
def assistant(client: OpenAI) -> Assistant:
    return client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])


# --- helpers -------------------------------------------------------------------------------------


def code_call(code: str) -> Reply:
    """The model's reply that runs `code` with the code interpreter."""
    return Reply(tool_calls=[ToolCall(FUNCTION, json.dumps({"code": code}))])


def wait_until(
    probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float = 30.0, what: str = ""
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: {value!r}")
        time.sleep(0.05)


def run_code(
    client: OpenAI,
    model: ScriptedModel,
    assistant: Assistant,
    thread_id: str,
    code: str,
    *,
    reply: str = "Done.",
    content: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> tuple[Run, dict[str, Any]]:
    """Post a user message, have the model run `code`, wait for the run to end.

    Returns the run and the step's code_interpreter tool call as a dict.
    """
    tag = f"rc-{secrets.token_hex(6)}"
    model.script(tag, code_call(code), Reply(text=reply))
    message: dict[str, Any] = {"role": "user", "content": f"{content or 'run it'} [{tag}]"}
    if attachments:
        message["attachments"] = attachments
    client.beta.threads.messages.create(thread_id, **message)
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant.id, poll_interval_ms=20
    )
    return run, tool_call(client, thread_id, run.id)


def tool_call(client: OpenAI, thread_id: str, run_id: str) -> dict[str, Any]:
    steps = client.beta.threads.runs.steps.list(run_id, thread_id=thread_id, order="asc")
    for step in steps:
        if step.step_details.type == "tool_calls":
            call = step.step_details.tool_calls[0]
            assert call.type == "code_interpreter"
            dumped: dict[str, Any] = call.model_dump()
            return dumped
    return {}


def logs_of(call: dict[str, Any]) -> str:
    return "".join(o["logs"] for o in call["code_interpreter"]["outputs"] if o["type"] == "logs")


def images_of(call: dict[str, Any]) -> list[str]:
    return [
        o["image"]["file_id"] for o in call["code_interpreter"]["outputs"] if o["type"] == "image"
    ]


def tool_output(model: ScriptedModel, call_id: str) -> str:
    """What the model was told the call produced (the tool message it received)."""
    for body in reversed(model.requests()):
        for message in body["messages"]:
            if message.get("role") == "tool" and message.get("tool_call_id") == call_id:
                return str(message["content"])
    raise AssertionError(f"the model never saw the output of {call_id}")


def _docker_http() -> httpx.Client:
    endpoint = Endpoint.parse(Settings().sandbox_docker_host)
    if endpoint.socket_path is not None:
        return httpx.Client(
            transport=httpx.HTTPTransport(uds=endpoint.socket_path),
            base_url="http://docker",
            timeout=30,
        )
    return httpx.Client(base_url=f"http://{endpoint.host}:{endpoint.port}", timeout=30)


def _sandbox_containers() -> list[dict[str, Any]]:
    with _docker_http() as http:
        listed: list[dict[str, Any]] = http.get(
            "/containers/json",
            params={"all": "true", "filters": json.dumps({"label": [LABEL]})},
        ).json()
    return listed


def container_names() -> set[str]:
    """Names of the sandbox containers the Docker engine has (running or not)."""
    return {name.lstrip("/") for info in _sandbox_containers() for name in info["Names"]}


def remove_containers_of(pids: set[int]) -> None:
    """Remove the sandboxes that the server processes `pids` started (sessions outlive their
    server by design; a test's should not outlive the test)."""
    owners = {f"{socket.gethostname()}:{pid}" for pid in pids}
    with _docker_http() as http:
        for info in _sandbox_containers():
            if (info.get("Labels") or {}).get(OWNER_LABEL) in owners:
                http.delete(f"/containers/{info['Id']}", params={"force": "true"})

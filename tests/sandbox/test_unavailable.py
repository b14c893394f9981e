"""Without Docker, or without the sandbox image, runs that need the code interpreter fail with
a clear `last_error`; everything else keeps working."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.sandbox.conftest import SandboxServer, code_call, docker_problem
from tests.support.scripted_model import Reply, ScriptedModel
from tests.support.server import wait_for_log_line


def check(server: SandboxServer, model: ScriptedModel, marker: str, expected: str) -> str:
    """The failed run's `last_error.message`, checked to contain `expected`."""
    client = server.client
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": marker}])
    model.script(marker, code_call("print(1)"), Reply(text="never"))
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )
    assert run.status == "failed"
    assert run.last_error is not None
    assert run.last_error.code == "server_error"
    assert run.last_error.message.startswith("The code interpreter is unavailable: ")
    assert expected in run.last_error.message
    failure = run.last_error.message

    # The same server still answers runs that do not need it.
    plain = client.beta.assistants.create(model="gpt-4o")
    client.beta.threads.messages.create(thread.id, role="user", content=f"{marker} plain")
    model.script(f"{marker} plain", Reply(text="fine without code"))
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=plain.id, poll_interval_ms=20
    )
    assert run.status == "completed", run.last_error
    assert client.beta.threads.messages.list(thread.id).data[0].content[0].text.value == (
        "fine without code"
    )
    return failure


def test_docker_unreachable(
    sandbox_servers: Callable[..., SandboxServer], model: ScriptedModel
) -> None:
    server = sandbox_servers(
        {"ASSISTANTD_SANDBOX_DOCKER_HOST": "unix:///nonexistent/assistantd/docker.sock"}
    )
    failure = check(
        server,
        model,
        "ci-no-docker",
        "cannot reach the Docker engine at unix:///nonexistent/assistantd/docker.sock",
    )
    assert "install and start a Docker engine" in failure  # and what to do

    # The process that runs code said so when it started, and its /readyz says so.
    line = wait_for_log_line(server.work_dir, "code interpreter not ready: cannot reach")
    assert "/nonexistent/assistantd/docker.sock" in line
    sandbox = httpx.get(f"{server.api.url}/readyz").json()["code_interpreter"]
    if server.worker is None:
        assert sandbox["status"] == "unavailable"
        assert "install and start a Docker engine" in sandbox["detail"]
    else:
        assert sandbox["status"] == "not_checked"


def test_image_missing(sandbox_servers: Callable[..., SandboxServer], model: ScriptedModel) -> None:
    problem = docker_problem()
    if problem is not None and "no sandbox image" not in problem:
        pytest.skip(problem)
    server = sandbox_servers({"ASSISTANTD_SANDBOX_IMAGE": "assistantd-sandbox:no-such-tag"})
    check(
        server,
        model,
        "ci-no-image",
        "the sandbox image 'assistantd-sandbox:no-such-tag' is not on the Docker engine at "
        "unix:///var/run/docker.sock: build it with `make sandbox-image` or "
        "`assistantd sandbox build`",
    )

"""Without Docker, or without the sandbox image, runs that need the code interpreter fail with
a clear `last_error`; everything else keeps working."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.sandbox.conftest import SandboxServer, code_call, docker_problem
from tests.support.scripted_model import Reply, ScriptedModel


def check(server: SandboxServer, model: ScriptedModel, marker: str, expected: str) -> None:
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


def test_docker_unreachable(
    sandbox_servers: Callable[..., SandboxServer], model: ScriptedModel
) -> None:
    server = sandbox_servers(
        {"ASSISTANTD_SANDBOX_DOCKER_HOST": "unix:///nonexistent/assistantd/docker.sock"}
    )
    check(
        server,
        model,
        "ci-no-docker",
        "cannot reach the Docker engine at unix:///nonexistent/assistantd/docker.sock",
    )


def test_image_missing(sandbox_servers: Callable[..., SandboxServer], model: ScriptedModel) -> None:
    problem = docker_problem()
    if problem is not None and "no sandbox image" not in problem:
        pytest.skip(problem)
    server = sandbox_servers({"ASSISTANTD_SANDBOX_IMAGE": "assistantd-sandbox:no-such-tag"})
    check(
        server,
        model,
        "ci-no-image",
        "the sandbox image 'assistantd-sandbox:no-such-tag' is not on the Docker engine. "
        "Build it with `assistantd sandbox build`.",
    )
